#!/usr/bin/env node
// An independent verifier of Hall evidence bundles, written from
// docs/EVIDENCE.md alone: RFC 8785 by the npm "canonicalize" package,
// SHA-256 and Ed25519 by node:crypto. It shares no code with the Hall.
//
//   node verify.mjs BUNDLE_DIR [--keys KEYSET.json]   verify a bundle (exit 0 when everything verifies)
//   node verify.mjs --canon < lines.jsonl             print the RFC 8785 form of each JSON line (as a JSON string)
import canonicalize from 'canonicalize';
import { createHash, createPublicKey, verify as edVerify } from 'node:crypto';
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';

const sha256 = (buf) => 'sha256:' + createHash('sha256').update(buf).digest('hex');

function canonMode() {
  const input = readFileSync(0, 'utf8');
  const out = [];
  for (const line of input.split('\n')) {
    if (line === '') continue;
    let c;
    try { c = canonicalize(JSON.parse(line)); } catch (e) { c = null; }
    out.push(JSON.stringify(c));
  }
  process.stdout.write(out.join('\n') + '\n');
}

function loadKeys(path) {
  const ks = JSON.parse(readFileSync(path, 'utf8'));
  const keys = new Map();
  for (const k of ks.keys) {
    const raw = Buffer.from(k.public_key, 'base64');
    if (raw.length !== 32) throw new Error(`key ${k.key_id}: public_key is not 32 bytes`);
    const id = 'ed25519:' + createHash('sha256').update(raw).digest('hex').slice(0, 16);
    if (id !== k.key_id) throw new Error(`key ${k.key_id}: its public key has id ${id}`);
    const pub = createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: raw.toString('base64url') }, format: 'jwk' });
    keys.set(id, { pub, raw });
  }
  return keys;
}

const sigOK = (pub, message, sigB64) => {
  try { return edVerify(null, Buffer.from(message, 'utf8'), pub, Buffer.from(sigB64, 'base64')); } catch { return false; }
};

// The id, previous-hash and stream members of each chain (EVIDENCE.md "Chains").
const idOf = (chain, e) => chain === 'receipts' ? e.receipt_id : chain === 'changes' ? e.change_id : e.entry_id;
const prevOf = (chain, e) => chain === 'receipts' ? e.prev_receipt_hash : e.prev_hash;
const streamOf = (chain, e) => chain === 'changes' ? '(changes)' : e.tenant_id;

// The life of each approval in the change chain (EVIDENCE.md "Approvals",
// "What verification covers"): requested once; answered while pending by
// an approver token (decided_by the actor, never the requesting tenant);
// expired while pending or approved; used once, after a signed approval,
// by a decision of the bundle whose policy.approval_id names it. Once the
// chain holds a "token" change (EVIDENCE.md "Tokens"), an answer's token
// must be issued by an earlier change with a scope that may answer the
// tenant (admin, approver, approver:<another tenant>) and not revoked before;
// and any other change made by a token ("token:<id>": rules, snapshot,
// enroll…) must follow an issuance of it with scope admin, not revoked before.
function verifyApprovals(entries, fail) {
  const life = new Map(); // approval id -> {state, tenant}
  const tokens = new Map(); // token id -> {scope, issued, revoked, change}
  let tokensSeen = false;
  const mayAnswer = (actor, tenant) => {
    if (!tokensSeen) return null;
    const id = actor.slice('token:'.length);
    const t = tokens.get(id);
    if (!t || !t.issued) return `answered by token ${id}, whose issuance no earlier change records`;
    if (t.revoked) return `answered by token ${id}, revoked in change ${t.change} before`;
    const s = t.scope;
    if (!(s === 'admin' || s === 'approver' || (s.startsWith('approver:') && s.slice('approver:'.length) !== tenant))) {
      return `answered by token ${id}, issued with scope ${s}, which may not answer tenant ${tenant}'s approvals`;
    }
    return null;
  };
  const decisions = new Map(); // decision id -> decision
  for (const l of entries) {
    if (l.chain === 'decisions' && l.entry.kind === 'decision') decisions.set(l.entry.entry_id, l.entry.decision);
  }
  const rules = {
    approval_requested: [null, 'pending'],
    approval_approved: [['pending'], 'approved'],
    approval_denied: [['pending'], 'denied'],
    approval_expired: [['pending', 'approved'], 'expired'],
    approval_used: [['approved'], 'used'],
  };
  for (const l of entries) {
    const c = l.entry;
    if (l.chain === 'changes' && c.kind === 'token') {
      tokensSeen = true;
      const e = c.body || {};
      const where = `change ${c.change_id}`;
      const t = tokens.get(e.token_id);
      if (e.token_id !== c.subject) fail(where, `token ${c.subject}: the change's body is not the token event it names`);
      else if (e.event === 'issued') {
        if (t) fail(where, `token ${e.token_id}: issued again (first issued in change ${t.change})`);
        else tokens.set(e.token_id, { scope: e.scope, issued: true, revoked: false, change: c.change_id });
      } else if (e.event === 'revoked') {
        if (t) { t.revoked = true; t.change = c.change_id; } else tokens.set(e.token_id, { scope: e.scope, issued: false, revoked: true, change: c.change_id });
      } else fail(where, `token ${e.token_id}: unknown token event ${e.event}`);
      continue;
    }
    if (l.chain === 'changes' && !c.kind.startsWith('approval_')) {
      // An admin action (rules, snapshot, enroll, policy, config…) by a
      // token: once tokens are recorded, an earlier admin issuance of it,
      // not revoked before (EVIDENCE.md "Tokens").
      if (tokensSeen && typeof c.actor === 'string' && c.actor.startsWith('token:')) {
        const id = c.actor.slice('token:'.length);
        const t = tokens.get(id);
        const what = `${c.kind} change ${c.subject} made by token ${id}`;
        if (!t || !t.issued) fail(`change ${c.change_id}`, `${what}, whose admin issuance no earlier change records`);
        else if (t.revoked) fail(`change ${c.change_id}`, `${what}, revoked in change ${t.change} before`);
        else if (t.scope !== 'admin') fail(`change ${c.change_id}`, `${what}, issued with scope ${t.scope}, not admin`);
      }
      continue;
    }
    if (l.chain !== 'changes') continue;
    const a = c.body || {};
    const where = `change ${c.change_id}`;
    const bad = (why) => fail(where, `approval ${c.subject}: ${why}`);
    const rule = rules[c.kind];
    if (!rule) { bad(`unknown approval change kind ${c.kind}`); continue; }
    if (a.approval_id !== c.subject) { bad('the body is not the approval it names'); continue; }
    const prev = life.get(c.subject);
    const [from, to] = rule;
    if (from === null && prev) { bad('requested again'); continue; }
    if (from !== null) {
      if (!prev) { bad(`${c.kind} but never requested`); continue; }
      if (!from.includes(prev.state)) {
        bad(c.kind === 'approval_used' ? `used while ${prev.state}: no signed approval_approved precedes this use` : `${c.kind} while ${prev.state}`);
        continue;
      }
      if (a.tenant_id !== prev.tenant) { bad(`names tenant ${a.tenant_id}, requested by ${prev.tenant}`); continue; }
    }
    if ((c.kind === 'approval_approved' || c.kind === 'approval_denied') &&
        (!c.actor.startsWith('token:') || a.decided_by !== c.actor)) { bad(`${c.kind} by ${c.actor}: an approval is answered by an approver token`); continue; }
    if (c.kind === 'approval_approved' || c.kind === 'approval_denied') {
      const why = mayAnswer(c.actor, prev.tenant);
      if (why !== null) { bad(why); continue; }
    }
    if (c.kind === 'approval_used') {
      const d = decisions.get(a.used_by_decision_id);
      if (!d) { bad(`used by decision ${a.used_by_decision_id}, which is not in the bundle`); continue; }
      if (!d.policy || d.policy.approval_id !== c.subject) { bad(`used by decision ${a.used_by_decision_id}, which does not present it`); continue; }
    }
    if (a.state !== to) { bad(`${c.kind} holds state ${a.state}, want ${to}`); continue; }
    life.set(c.subject, { state: to, tenant: prev ? prev.tenant : a.tenant_id });
  }
}

function verifyBundle(dir, keysPath) {
  const failures = [];
  const fail = (where, why) => failures.push(`${where}: ${why}`);
  const keys = loadKeys(keysPath || join(dir, 'keys.json'));
  const lines = readFileSync(join(dir, 'entries.jsonl'), 'utf8').split('\n').filter((l) => l !== '');
  const entries = lines.map((l) => JSON.parse(l));

  // Key rotations (kind "key" changes) bound each key to positions.
  const after = new Map(); const until = new Map();
  const pos = (chain, stream) => chain + '\u0000' + stream;
  for (const l of entries) {
    if (l.chain !== 'changes' || l.entry.kind !== 'key') continue;
    const r = l.entry.body;
    const heads = new Map(r.heads.map((h) => [pos(h.chain, h.stream), h.sequence]));
    if (!until.has(r.old_key_id)) until.set(r.old_key_id, heads);
    after.set(r.new_key_id, heads);
    const { proof, ...stmt } = r;
    const nk = keys.get(r.new_key_id);
    if (!nk || !sigOK(nk.pub, canonicalize(stmt), proof)) fail(`change ${l.entry.change_id}`, 'key rotation proof does not verify with the new key');
    if (keys.has(r.new_key_id) && !keys.has(r.old_key_id)) fail(`change ${l.entry.change_id}`, `old key ${r.old_key_id} is not in the key set`);
  }

  // The keyring (EVIDENCE.md "Keys"): every key that signs must be the
  // key of the change chain's first entry, one its rotations name, or one
  // a "key_admit" change admitted, and an admitted key signs only between
  // the heads of its admission and those of its "key_revoke".
  // Only the ledger's own key (the first change's, or one its rotations
  // name) admits and revokes.
  const admitted = new Map(); const revoked = new Map(); const lineage = new Set();
  const firstChange = entries.find((l) => l.chain === 'changes');
  if (firstChange) lineage.add(firstChange.entry.signing_key_id);
  for (const l of entries) {
    if (l.chain === 'changes' && l.entry.kind === 'key') { lineage.add(l.entry.body.old_key_id); lineage.add(l.entry.body.new_key_id); }
  }
  const established = new Set(lineage);
  for (const l of entries) {
    if (l.chain !== 'changes') continue;
    const kind = l.entry.kind; const b = l.entry.body;
    if ((kind !== 'key_admit' && kind !== 'key_revoke') || !lineage.has(l.entry.signing_key_id)) continue;
    const heads = new Map((b.heads || []).map((h) => [pos(h.chain, h.stream), h.sequence]));
    if (kind === 'key_admit' && !admitted.has(b.key_id)) { admitted.set(b.key_id, heads); established.add(b.key_id); }
    if (kind === 'key_revoke' && !revoked.has(b.key_id)) revoked.set(b.key_id, heads);
  }

  const last = new Map(); // chain/stream -> {seq, hash}
  const byPos = new Map(); // chain/stream/seq -> {id, hash}
  const counts = { receipts: 0, decisions: 0, changes: 0 };
  const uncovered = new Map(); // chain/stream -> {key, where[]}: unsigned entries waiting for a signed one
  for (const l of entries) {
    const e = l.entry;
    const version = e.version === undefined ? 1 : e.version;
    const where = `${l.chain} ${JSON.stringify(l.stream)} #${l.sequence}`;
    counts[l.chain] = (counts[l.chain] || 0) + 1;
    let signed;
    if (version === 2) {
      signed = Buffer.from(canonicalize(e), 'utf8');
    } else if (typeof l.body === 'string') {
      signed = Buffer.from(l.body, 'utf8'); // version 1: the exact bytes (EVIDENCE.md "Versions")
    } else { fail(where, 'version 1 entry without its body'); continue; }
    if (sha256(signed) !== l.hash) { fail(where, `hashes to ${sha256(signed)}, not ${l.hash}`); continue; }
    const k = keys.get(e.signing_key_id);
    if (!k) { fail(where, `signed by unknown key ${e.signing_key_id}`); continue; }
    const p = pos(l.chain, l.stream);
    // An entry without a signature is covered by the next signed entry of
    // its chain, signed by the same key (EVIDENCE.md "Signatures"); the
    // hash links in between carry the proof.
    const run = uncovered.get(p);
    if (!l.signature) {
      if (run && run.key !== e.signing_key_id) fail(where, `unsigned entry names key ${e.signing_key_id}, its run ${run.key}`);
      else if (run) run.where.push(where);
      else uncovered.set(p, { key: e.signing_key_id, where: [where] });
    } else if (!sigOK(k.pub, l.hash, l.signature)) {
      fail(where, 'signature does not verify');
      continue;
    } else if (run) {
      if (run.key !== e.signing_key_id) fail(where, `covers unsigned entries of key ${run.key} with key ${e.signing_key_id}`);
      uncovered.delete(p);
    }
    if (after.has(e.signing_key_id) && l.sequence <= (after.get(e.signing_key_id).get(p) || 0)) fail(where, 'signed by a key before it was rotated in');
    if (until.has(e.signing_key_id) && l.sequence > (until.get(e.signing_key_id).get(p) || 0)) fail(where, 'signed by a key after it was rotated out');
    if (firstChange && !established.has(e.signing_key_id)) fail(where, `signed by key ${e.signing_key_id}, which the keyring never admitted`);
    if (admitted.has(e.signing_key_id) && l.sequence <= (admitted.get(e.signing_key_id).get(p) || 0)) fail(where, 'signed by a key before its admission');
    if (revoked.has(e.signing_key_id) && l.sequence > (revoked.get(e.signing_key_id).get(p) || 0)) fail(where, 'signed by a key after its revocation');
    if (e.sequence !== l.sequence || streamOf(l.chain, e) !== l.stream) fail(where, 'sequence or stream differs from the signed entry');
    const prev = last.get(p) || { seq: 0, hash: null };
    if (e.sequence !== prev.seq + 1) fail(where, `sequence ${e.sequence} follows ${prev.seq}`);
    if ((prevOf(l.chain, e) ?? null) !== prev.hash) fail(where, `previous hash ${prevOf(l.chain, e)} does not link to ${prev.hash}`);
    last.set(p, { seq: e.sequence, hash: l.hash });
    byPos.set(p + '\u0000' + e.sequence, { id: idOf(l.chain, e), hash: l.hash });
  }

  for (const run of uncovered.values()) for (const w of run.where) fail(w, 'unsigned and no later signed entry of its chain covers it');

  // Replays (EVIDENCE.md "Replays"): a receipt's replay_of names a
  // receipt recorded before it in its own stream (a replay is decided for
  // the original's tenant), of the same worker, correlation_id and
  // artifact_hash.
  const receiptAt = new Map(); // receipt id -> {stream, seq, entry}
  for (const l of entries) if (l.chain === 'receipts') receiptAt.set(l.entry.receipt_id, { stream: l.stream, seq: l.entry.sequence, entry: l.entry });
  const replayReported = new Set();
  for (const l of entries) {
    const e = l.entry;
    if (l.chain !== 'receipts' || e.replay_of === undefined || replayReported.has(l.stream)) continue;
    const where = `${l.chain} ${JSON.stringify(l.stream)} #${l.sequence}`;
    const o = receiptAt.get(e.replay_of);
    let why = null;
    if (!o) why = `replay_of names receipt ${e.replay_of}, which the bundle does not hold`;
    else if (o.stream !== l.stream) why = `replay_of names receipt ${e.replay_of} of stream ${JSON.stringify(o.stream)}, not of its own tenant`;
    else if (o.seq >= e.sequence) why = `replay_of names receipt ${e.replay_of} (#${o.seq}), which is not recorded before it`;
    else if (['worker_id', 'correlation_id', 'artifact_hash'].some((m) => o.entry[m] !== e[m])) why = `replay_of names receipt ${e.replay_of}, whose worker_id, correlation_id or artifact_hash differ from this replay's`;
    if (why !== null) { fail(where, why); replayReported.add(l.stream); }
  }

  // Schema versions and the rows no entry signs (EVIDENCE.md "Rows no
  // entry signs"): each schema change goes forward from the one before;
  // legacy.jsonl is empty in a ledger born with a schema change, and is
  // exactly what the first schema change sealed otherwise.
  const schemas = entries.filter((l) => l.chain === 'changes' && l.entry.kind === 'schema').map((l) => l.entry);
  schemas.forEach((c, i) => {
    const b = c.body || {};
    const where = `change ${c.change_id}`;
    if (i === 0 && b.from === 0 && b.born !== b.version) fail(where, `records the creation at schema version ${b.version} but names born version ${b.born}`);
    if (i > 0 && (b.from !== schemas[i - 1].body.version || (b.born || 0) !== (schemas[0].body.born || 0))) fail(where, `schema version ${b.from} does not follow ${schemas[i - 1].body.version}: rolled back`);
    if (!(b.version > b.from)) fail(where, `schema change goes from ${b.from} to ${b.version}, not forward`);
  });
  const legacyPath = join(dir, 'legacy.jsonl');
  const legacy = existsSync(legacyPath) ? readFileSync(legacyPath) : Buffer.alloc(0);
  const legacyLines = legacy.toString('utf8').split('\n').filter((l) => l !== '');
  if (schemas.length > 0) {
    const first = schemas[0].body;
    if (first.born) {
      if (legacyLines.length > 0) fail('legacy.jsonl', `${legacyLines.length} row(s) no entry signs, in a ledger born at schema version ${first.born}, which never wrote one`);
    } else {
      const seal = first.legacy || { decisions: 0, events: 0, digest: sha256(Buffer.alloc(0)) };
      const n = { decisions: 0, events: 0 };
      for (const l of legacyLines) { const t = JSON.parse(l).table; n[t] = (n[t] || 0) + 1; }
      if (sha256(legacy) !== seal.digest || n.decisions !== seal.decisions || n.events !== seal.events) {
        fail('legacy.jsonl', `${n.decisions} decisions and ${n.events} events row(s) (${sha256(legacy)}) are not the ${seal.decisions} and ${seal.events} (${seal.digest}) sealed by change ${schemas[0].change_id}`);
      }
    }
  }

  // Snapshots (EVIDENCE.md "Snapshots"): every decision and receipt that
  // names a snapshot names one a "snapshot" change recorded no later than
  // it; after the first snapshot change, every one names a snapshot.
  // Times are UTC in one fixed-width layout, so they compare as strings.
  const sealedAt = new Map();
  let firstSeal = null;
  for (const l of entries) {
    if (l.chain !== 'changes' || l.entry.kind !== 'snapshot') continue;
    if (!sealedAt.has(l.entry.digest)) sealedAt.set(l.entry.digest, l.entry.at);
    if (firstSeal === null) firstSeal = l.entry.at;
  }
  const reported = new Set();
  for (const l of entries) {
    const e = l.entry;
    let what; let at;
    if (l.chain === 'decisions' && e.kind === 'decision') { what = 'decision'; at = e.recorded_at; }
    else if (l.chain === 'receipts') { what = 'receipt'; at = e.dispatched_at; }
    else continue;
    const p = pos(l.chain, l.stream);
    if (reported.has(p)) continue;
    const where = `${l.chain} ${JSON.stringify(l.stream)} #${l.sequence}`;
    let why = null;
    if (e.snapshot === undefined) {
      if (firstSeal !== null && at > firstSeal) why = `${what} names no snapshot, although snapshots are recorded since ${firstSeal}`;
    } else if (!sealedAt.has(e.snapshot)) {
      why = `${what} names snapshot ${e.snapshot}, which no change entry records`;
    } else if (sealedAt.get(e.snapshot) > at) {
      why = `${what} names snapshot ${e.snapshot}, first recorded at ${sealedAt.get(e.snapshot)}, after the ${what} (${at})`;
    }
    if (why !== null) { fail(where, why); reported.add(p); }
  }

  // Replays (EVIDENCE.md "Replays"): a receipt naming replay_of names a
  // receipt of the bundle and that receipt's module and record.
  // ... and it was decided for the original decision's routing fields.
  const receiptsByID = new Map();
  const decisionsByID = new Map();
  for (const l of entries) {
    if (l.chain === 'receipts') receiptsByID.set(l.entry.receipt_id, l.entry);
    if (l.chain === 'decisions' && l.entry.kind === 'decision') decisionsByID.set(l.entry.entry_id, l.entry.decision);
  }
  const replayFields = ['tenant_id', 'capability_id', 'env', 'data_label', 'tenant_risk', 'qos_class', 'correlation_id'];
  for (const l of entries) {
    const e = l.entry;
    if (l.chain !== 'receipts' || e.replay_of === undefined) continue;
    const p = pos(l.chain, l.stream);
    if (reported.has(p)) continue;
    const o = receiptsByID.get(e.replay_of);
    let why = null;
    if (o === undefined) why = `replays receipt ${e.replay_of}, which is not recorded`;
    else if (o.artifact_hash !== e.artifact_hash || o.record_digest !== e.record_digest) {
      why = `replays receipt ${e.replay_of} but ran module ${e.artifact_hash} under record ${e.record_digest}, not its module ${o.artifact_hash} under record ${o.record_digest}`;
    } else {
      const mine = decisionsByID.get(e.decision_id); const theirs = decisionsByID.get(o.decision_id);
      const f = mine && theirs && replayFields.find((k) => JSON.stringify(mine[k]) !== JSON.stringify(theirs[k]));
      if (f) why = `replays receipt ${e.replay_of} but was decided for ${f} ${JSON.stringify(mine[f])}, not the original decision's ${JSON.stringify(theirs[f])}`;
    }
    if (why !== null) { fail(`receipts ${JSON.stringify(l.stream)} #${l.sequence}`, why); reported.add(p); }
  }

  // Chains of dispatches (EVIDENCE.md "Chains of dispatches"): a hop's
  // parent_decision_id names the receipt of a dispatch of its tenant and
  // correlation id one level up (a hop without its parent is reported),
  // its signed decision names the same parent and depth, and a root's
  // chain_hops and chain_blast are its hop receipts' count and the sum of
  // its and their blast scores.
  const chainNodes = new Map(); // decision id -> {l, e, children}
  for (const l of entries) {
    const e = l.entry;
    if (l.chain === 'receipts' && (e.blast_score !== undefined || e.parent_decision_id !== undefined)) chainNodes.set(e.decision_id, { l, e, children: [] });
  }
  const chainFail = (n, why) => {
    const p = pos(n.l.chain, n.l.stream);
    if (!reported.has(p)) { fail(`receipts ${JSON.stringify(n.l.stream)} #${n.l.sequence}`, why); reported.add(p); }
  };
  for (const n of chainNodes.values()) {
    const e = n.e;
    if (e.parent_decision_id === undefined) continue;
    const depth = e.chain_depth || 0;
    const par = chainNodes.get(e.parent_decision_id);
    if (!par) { chainFail(n, `hop at depth ${depth} names parent decision ${e.parent_decision_id}, which no receipt of a chain records: a hop without its parent`); continue; }
    if (par.l.stream !== n.l.stream || par.e.correlation_id !== e.correlation_id) { chainFail(n, `hop names parent decision ${e.parent_decision_id} of another tenant or correlation id`); continue; }
    if ((par.e.chain_depth || 0) + 1 !== depth) { chainFail(n, `hop at depth ${depth} names a parent at depth ${par.e.chain_depth || 0}`); continue; }
    const d = decisionsByID.get(e.decision_id);
    if (d && (!d.chain || d.chain.parent_decision_id !== e.parent_decision_id || d.chain.depth !== depth)) { chainFail(n, `hop's signed decision ${e.decision_id} names another parent or depth`); continue; }
    par.children.push(n);
  }
  const walk = (n) => {
    let hops = 0; let blast = n.e.blast_score || 0;
    for (const c of n.children) { const [h, b] = walk(c); hops += h + 1; blast += b; }
    return [hops, blast];
  };
  for (const n of chainNodes.values()) {
    if (n.e.parent_decision_id !== undefined) continue;
    const [hops, blast] = walk(n);
    if (hops !== (n.e.chain_hops || 0) || blast !== (n.e.chain_blast || 0)) chainFail(n, `chain root records ${n.e.chain_hops || 0} hops and a chain blast of ${n.e.chain_blast || 0}, but the bundle holds ${hops} hop receipts below it summing ${blast}`);
  }

  // Checkpoints: each signed, and every head it names present, unchanged.
  const cpDir = join(dir, 'checkpoints');
  let checkpoints = 0;
  const cpFiles = existsSync(cpDir) ? readdirSync(cpDir).filter((f) => f.endsWith('.json')).sort() : [];
  for (const f of cpFiles) {
    checkpoints++;
    const cp = JSON.parse(readFileSync(join(cpDir, f), 'utf8'));
    const { hash, signature, ...body } = cp;
    const h = sha256(Buffer.from(canonicalize(body), 'utf8'));
    if (h !== hash) { fail(`checkpoint ${f}`, `hashes to ${h}, not ${hash}`); continue; }
    const k = keys.get(cp.signing_key_id);
    if (!k || !sigOK(k.pub, hash, signature)) { fail(`checkpoint ${f}`, 'signature does not verify'); continue; }
    for (const hd of cp.heads) {
      const got = byPos.get(pos(hd.chain, hd.stream) + '\u0000' + hd.sequence);
      if (!got) fail(`checkpoint ${f}`, `${hd.chain} ${JSON.stringify(hd.stream)} #${hd.sequence} is missing: truncated`);
      else if (got.hash !== hd.hash || got.id !== hd.entry_id) fail(`checkpoint ${f}`, `${hd.chain} ${JSON.stringify(hd.stream)} #${hd.sequence} was rewritten`);
    }
  }

  // Approvals: each one's life in the change chain.
  verifyApprovals(entries, fail);

  // The manifest's heads are where each chain ends.
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  for (const hd of manifest.heads) {
    const l = last.get(pos(hd.chain, hd.stream));
    if (!l || l.seq !== hd.sequence || l.hash !== hd.hash) fail(`manifest`, `${hd.chain} ${JSON.stringify(hd.stream)} does not end at #${hd.sequence}`);
  }
  if (manifest.heads.length !== last.size) fail('manifest', `names ${manifest.heads.length} chains, the entries hold ${last.size}`);

  for (const f of failures) console.log('FAIL ' + f);
  if (failures.length > 0) return 1;
  console.log(`verified ${entries.length} entries (${counts.receipts} receipts, ${counts.decisions} decision entries, ${counts.changes} changes) in ${last.size} chains, ${checkpoints} checkpoints, ${keys.size} keys`);
  return 0;
}

const args = process.argv.slice(2);
if (args[0] === '--canon') {
  canonMode();
} else if (args.length === 1 || (args.length === 3 && args[1] === '--keys')) {
  try {
    process.exitCode = verifyBundle(args[0], args[2]);
  } catch (e) {
    console.log('FAIL ' + e.message);
    process.exitCode = 1;
  }
} else {
  console.error('usage: node verify.mjs BUNDLE_DIR [--keys KEYSET.json] | node verify.mjs --canon < lines');
  process.exitCode = 2;
}
