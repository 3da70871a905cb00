package main

import (
	"os"
	"slices"
	"strings"
	"testing"
)

func TestSplitSentences(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []string
	}{
		{"empty", "", nil},
		{"spaces", "  \n\t ", nil},
		{"simple", "One. Two! Three?", []string{"One.", "Two!", "Three?"}},
		{"no-final-punct", "First one. Then a fragment", []string{"First one.", "Then a fragment"}},
		{"abbreviations", "Dr. Smith met Mr. Jones, e.g. at noon. They left.", []string{"Dr. Smith met Mr. Jones, e.g. at noon.", "They left."}},
		{"initials", "J. R. Tolkien wrote it. It sold well.", []string{"J. R. Tolkien wrote it.", "It sold well."}},
		{"decimals", "Pi is 3.14 today. Yes.", []string{"Pi is 3.14 today.", "Yes."}},
		{"quotes", `He said "stop." She did. (Really!) Fine.`, []string{`He said "stop."`, "She did.", "(Really!)", "Fine."}},
		{"runs", "What?! No... Okay.", []string{"What?!", "No...", "Okay."}},
		{"blank-line", "A heading\n\nBody text here.\nSame sentence.", []string{"A heading", "Body text here.", "Same sentence."}},
		{"collapse", "Line one\ncontinues here.   Next.", []string{"Line one continues here.", "Next."}},
		{"unicode", "Ça marche. Ünïcode fine!", []string{"Ça marche.", "Ünïcode fine!"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := SplitSentences(tc.text); !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

func TestContentWords(t *testing.T) {
	got := contentWords("The models' budget is THE budget; it's a Model of buses, and I said so.")
	want := []string{"model", "budget", "budget", "model", "buse", "said"}
	if !slices.Equal(got, want) {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestSummarizeArticle(t *testing.T) {
	b, err := os.ReadFile("testdata/article.txt")
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	all := SplitSentences(text)
	if len(all) != 8 {
		t.Fatalf("article splits into %d sentences, want 8: %q", len(all), all)
	}
	s := Summarize(text, Options{Sentences: 3})
	if len(s.Sentences) != 3 || s.Total != 8 {
		t.Fatalf("got %d of %d sentences", len(s.Sentences), s.Total)
	}
	if !slices.IsSorted(s.Indices) {
		t.Errorf("indices %v not in original order", s.Indices)
	}
	for i, idx := range s.Indices {
		if s.Sentences[i] != all[idx] {
			t.Errorf("sentence %d is not sentence %d of the text", i, idx)
		}
	}
	// The lead states the gist and repeats the frequent words; the filler
	// sentences share no content with the rest of the article.
	if s.Indices[0] != 0 {
		t.Errorf("lead sentence not chosen: %v", s.Indices)
	}
	for _, filler := range []string{"Weather on Tuesday was mild.", "Several residents attended the meeting in person."} {
		if slices.Contains(s.Sentences, filler) {
			t.Errorf("filler %q chosen over on-topic sentences", filler)
		}
	}
	if got := s.Text(); got != strings.Join(s.Sentences, " ") {
		t.Errorf("Text() = %q", got)
	}
}

func TestSummarizeScoringPrefersFrequentTerms(t *testing.T) {
	// Without the lead bonus in play (the lead is the same in both), the
	// sentence sharing the document's frequent words must outrank an
	// equally long sentence of one-off words.
	text := "Intro line here. Solar panels cut power bills. Giraffes enjoy quiet afternoons. " +
		"Solar power grows fast. Cheap solar panels spread. Power bills fall with solar."
	s := Summarize(text, Options{Sentences: 2})
	if slices.Contains(s.Sentences, "Giraffes enjoy quiet afternoons.") {
		t.Errorf("off-topic sentence chosen: %q", s.Sentences)
	}
}

func TestSummaryLength(t *testing.T) {
	text := strings.Repeat("Alpha beta gamma. ", 10)
	for _, tc := range []struct {
		name string
		opts Options
		want int
	}{
		{"default", Options{}, DefaultSentences},
		{"sentences", Options{Sentences: 4}, 4},
		{"more-than-available", Options{Sentences: 50}, 10},
		{"ratio", Options{Ratio: 0.25}, 3}, // ceil(2.5)
		{"tiny-ratio", Options{Ratio: 0.01}, 1},
		{"full-ratio", Options{Ratio: 1}, 10},
		{"sentences-win", Options{Sentences: 2, Ratio: 0.9}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.opts.Validate(); err != nil {
				t.Fatal(err)
			}
			if got := len(Summarize(text, tc.opts).Sentences); got != tc.want {
				t.Errorf("got %d sentences, want %d", got, tc.want)
			}
		})
	}
	if s := Summarize("", Options{}); len(s.Sentences) != 0 || s.Total != 0 || s.Sentences == nil {
		t.Errorf("empty text: %+v", s)
	}
}

func TestOptionsValidate(t *testing.T) {
	for _, o := range []Options{{Sentences: -1}, {Ratio: -0.1}, {Ratio: 1.5}} {
		if o.Validate() == nil {
			t.Errorf("%+v accepted", o)
		}
	}
}

func TestParseRequest(t *testing.T) {
	for _, tc := range []struct {
		name, in         string
		wantJSON, wantEr bool
		wantText         string
		wantN            int
	}{
		{"plain", "Hello there.", false, false, "", 0},
		{"brace-text", "{not json at all. Really.", false, false, "", 0},
		{"other-json", `{"title":"x"}`, false, false, "", 0},
		{"json", ` {"text":"A. B.","sentences":1}`, true, false, "A. B.", 1},
		{"json-bad-option", `{"text":"A.","sentences":"two"}`, false, true, "", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, isJSON, err := parseRequest([]byte(tc.in))
			if isJSON != tc.wantJSON || (err != nil) != tc.wantEr {
				t.Fatalf("json %v err %v", isJSON, err)
			}
			if isJSON && (*req.Text != tc.wantText || req.Sentences != tc.wantN) {
				t.Errorf("req %+v", req)
			}
		})
	}
}
