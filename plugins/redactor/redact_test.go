package main

import (
	"maps"
	"strings"
	"testing"
)

func TestRedact(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		counts         map[Kind]int
	}{
		{"email", "Write to jane.doe+tag@mail.example.co.uk today.", "Write to [EMAIL] today.", map[Kind]int{KindEmail: 1}},
		{"card-spaces", "Card 4111 1111 1111 1111 on file.", "Card [CARD] on file.", map[Kind]int{KindCard: 1}},
		{"card-dashes", "4012-8888-8888-1881", "[CARD]", map[Kind]int{KindCard: 1}},
		{"card-bad-luhn", "Order 4111 1111 1111 1112 shipped.", "Order 4111 1111 1111 1112 shipped.", map[Kind]int{}},
		{"ssn", "SSN 123-45-6789.", "SSN [SSN].", map[Kind]int{KindSSN: 1}},
		{"iban", "Pay to DE89 3704 0044 0532 0130 00 now.", "Pay to [IBAN] now.", map[Kind]int{KindIBAN: 1}},
		{"iban-compact", "GB82WEST12345698765432", "[IBAN]", map[Kind]int{KindIBAN: 1}},
		{"iban-bad-check", "DE00370400440532013000", "DE00370400440532013000", map[Kind]int{}},
		{"ipv4", "Host 192.168.10.254 answered.", "Host [IPV4] answered.", map[Kind]int{KindIPv4: 1}},
		{"ipv4-out-of-range", "Version 1.2.300.4 released.", "Version 1.2.300.4 released.", map[Kind]int{}},
		{"phone-intl", "Call +1 415-555-2671 or +44 20 7946 0958.", "Call [PHONE] or [PHONE].", map[Kind]int{KindPhone: 2}},
		{"phone-parens", "Office: (555) 123-4567.", "Office: [PHONE].", map[Kind]int{KindPhone: 1}},
		{"date-not-phone", "Due 2024-01-15, invoice 20240115.", "Due 2024-01-15, invoice 20240115.", map[Kind]int{}},
		{"short-number", "Room 12-34 and 3.14.", "Room 12-34 and 3.14.", map[Kind]int{}},
		{"inside-token", "id abc4111111111111111xyz", "id abc4111111111111111xyz", map[Kind]int{}},
		{"mixed", "Mail a@b.io, call 555-123-4567, IP 10.0.0.1.", "Mail [EMAIL], call [PHONE], IP [IPV4].",
			map[Kind]int{KindEmail: 1, KindPhone: 1, KindIPv4: 1}},
		{"unicode-around", "Émail: ü@exämple.com → x@y.org", "Émail: ü@exämple.com → [EMAIL]", map[Kind]int{KindEmail: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, counts := Redact(tc.in, Options{})
			if got != tc.want {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
			if !maps.Equal(counts, tc.counts) {
				t.Errorf("counts %v, want %v", counts, tc.counts)
			}
		})
	}
}

func TestRedactOptions(t *testing.T) {
	in := "a@b.io 555-123-4567"
	got, _ := Redact(in, Options{Kinds: []Kind{KindPhone}})
	if got != "a@b.io [PHONE]" {
		t.Errorf("phone only: %q", got)
	}
	// An SSN the SSA never issues is not an SSN (it may still look like a
	// phone number, which is why only ssn is asked for here).
	if got, _ := Redact("Ref 666-45-6789.", Options{Kinds: []Kind{KindSSN}}); got != "Ref 666-45-6789." {
		t.Errorf("invalid SSN area: %q", got)
	}
	got, _ = Redact(in, Options{Mask: MaskStars})
	if got != "****** ************" || len(got) != len(in) {
		t.Errorf("stars: %q", got)
	}
	got, _ = Redact("ü@b.io → x", Options{Mask: MaskStars})
	if got != "ü@b.io → x" {
		t.Errorf("non-ASCII local part must not be matched: %q", got)
	}
}

func TestFindPrecedence(t *testing.T) {
	// The digits of a card also fit the phone pattern: the card wins.
	f := Find("4111-1111-1111-1111", nil)
	if len(f) != 1 || f[0].Kind != KindCard {
		t.Errorf("findings %+v, want one card", f)
	}
	// Kinds order given by the caller does not change precedence.
	f = Find("4111-1111-1111-1111", []Kind{KindPhone, KindCard})
	if len(f) != 1 || f[0].Kind != KindCard {
		t.Errorf("findings %+v, want one card", f)
	}
}

func TestOptionsValidate(t *testing.T) {
	if err := (Options{Kinds: []Kind{"passport"}}).Validate(); err == nil || !strings.Contains(err.Error(), "passport") {
		t.Errorf("unknown kind: %v", err)
	}
	if err := (Options{Mask: "blur"}).Validate(); err == nil {
		t.Error("unknown mask accepted")
	}
	if err := (Options{Kinds: AllKinds, Mask: MaskStars}).Validate(); err != nil {
		t.Error(err)
	}
}

func TestValidators(t *testing.T) {
	for _, tc := range []struct {
		f    func(string) bool
		in   string
		want bool
	}{
		{luhnValid, "79927398713", false}, // valid Luhn but only 11 digits
		{luhnValid, "378282246310005", true},
		{luhnValid, "378282246310006", false},
		{ibanValid, "FR1420041010050500013M02606", true},
		{ibanValid, "FR1420041010050500013M02607", false},
		{ipv4Valid, "01.2.3.4", false},
		{ipv4Valid, "255.255.255.255", true},
		{ssnValid, "900-12-3456", false},
		{ssnValid, "123-00-4567", false},
	} {
		if got := tc.f(tc.in); got != tc.want {
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
}
