// Check, in the person's own browser, what the server says about a receipt or a log entry, with
// the public key the ledger publishes (/api/v1/ledger/checkpoint) and nothing else trusted:
//
// - a receipt (`[data-verify=receipt]`): the Ed25519 signature of the compact JWS under the key
//   its header names, and that the signed document is the one the page describes;
// - a log entry (`[data-verify=entry]`): the entry's leaf hash (RFC 9162, SHA-256 of 0x00 and
//   the canonical JSON the page shows), its inclusion proof up to the newest checkpoint's root,
//   and the checkpoint's Ed25519 signature.
//
// Each check writes its outcome into the page's list (`[data-check=name]`).

const enc = new TextEncoder();

function fromB64(text) {
  const clean = text.replace(/-/g, "+").replace(/_/g, "/");
  const padded = clean + "=".repeat((4 - (clean.length % 4)) % 4);
  return Uint8Array.from(atob(padded), (c) => c.charCodeAt(0));
}

function equal(a, b) {
  return a.length === b.length && a.every((v, i) => v === b[i]);
}

function concat(...parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
}

async function sha256(bytes) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
}

async function ed25519(publicB64, signature, message) {
  const key = await crypto.subtle.importKey("raw", fromB64(publicB64), { name: "Ed25519" }, false, ["verify"]);
  return crypto.subtle.verify({ name: "Ed25519" }, key, signature, message);
}

// RFC 9162, 2.1.3.2: the root a leaf and its audit path lead to.
async function rootFromInclusion(index, size, leaf, path) {
  if (index >= size) return null;
  let fn = index, sn = size - 1, r = leaf;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = await sha256(concat(Uint8Array.of(1), p, r));
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) { fn = Math.floor(fn / 2); sn = Math.floor(sn / 2); }
      }
    } else {
      r = await sha256(concat(Uint8Array.of(1), r, p));
    }
    fn = Math.floor(fn / 2); sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

function mark(root, name, ok, text) {
  const item = root.querySelector(`[data-check=${name}]`);
  if (!item) return;
  item.classList.remove("pending");
  item.classList.add(ok ? "passed" : "failed");
  item.querySelector(".outcome").textContent = ok ? "✓ " : "✗ ";
  if (text) item.querySelector(".detail").textContent = text;
}

function summary(root, ok, text) {
  const box = root.querySelector("[data-verdict]");
  box.textContent = text;
  box.classList.add(ok ? "passed" : "failed");
  box.setAttribute("aria-busy", "false");
}

async function checkpoint() {
  const response = await fetch("/api/v1/ledger/checkpoint", { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error("The log has no signed checkpoint yet.");
  return response.json();
}

function sortedJson(value) {
  if (Array.isArray(value)) return `[${value.map(sortedJson).join(",")}]`;
  if (value && typeof value === "object") {
    return `{${Object.keys(value).sort().map((k) => `${JSON.stringify(k)}:${sortedJson(value[k])}`).join(",")}}`;
  }
  return JSON.stringify(value);
}

async function verifyReceipt(root) {
  const jws = root.dataset.jws;
  const shown = JSON.parse(document.getElementById(root.dataset.document).textContent);
  const [header64, payload64, signature64] = jws.split(".");
  const header = JSON.parse(new TextDecoder().decode(fromB64(header64)));
  const payload = JSON.parse(new TextDecoder().decode(fromB64(payload64)));
  const published = await checkpoint();
  const key = (published.keys || []).find((k) => k.kid === header.kid);
  mark(root, "key", Boolean(key), key ? `Key ${header.kid.slice(0, 12)}… is in the ledger's published key history.` : "The key that signed this receipt is not among the published keys.");
  let signed = false;
  if (key && header.alg === "EdDSA") {
    signed = await ed25519(key.public_key, fromB64(signature64), enc.encode(`${header64}.${payload64}`));
  }
  mark(root, "signature", signed, signed ? "The Ed25519 signature is valid." : "The signature does not check out.");
  const same = sortedJson(payload) === sortedJson(shown);
  mark(root, "document", same, same ? "What this page says is exactly what was signed." : "The signed receipt differs from what this page shows.");
  const ok = Boolean(key) && signed && same;
  summary(root, ok, ok ? "This receipt is genuine: signed by the store, unchanged." : "This receipt did not verify. Keep a copy and tell an auditor.");
}

async function verifyEntry(root) {
  const leafText = JSON.parse(document.getElementById(root.dataset.leaf).textContent);
  const proofResponse = await fetch(root.dataset.proof, { headers: { Accept: "application/json" } });
  if (!proofResponse.ok) throw new Error("The proof could not be fetched.");
  const proof = await proofResponse.json();
  const leaf = await sha256(concat(Uint8Array.of(0), enc.encode(leafText)));
  const sameLeaf = equal(leaf, fromB64(proof.leaf_hash));
  mark(root, "leaf", sameLeaf, sameLeaf ? "The entry shown hashes to the leaf in the log." : "The entry shown does not match the log's leaf.");
  const computed = await rootFromInclusion(proof.leaf_index, proof.tree_size, leaf, proof.proof.map(fromB64));
  const published = await checkpoint();
  const included = computed !== null && equal(computed, fromB64(published.root_hash)) && proof.tree_size === published.tree_size;
  mark(root, "inclusion", included, included ? `Leaf ${proof.leaf_index} leads to the root of the newest checkpoint (${published.tree_size} entries).` : "The proof does not lead to the newest checkpoint's root.");
  const body = published.note.split("\n\n")[0] + "\n";
  let signed = false;
  if (published.public_key) signed = await ed25519(published.public_key, fromB64(published.signature), enc.encode(body));
  const states = body === `${published.origin}\n${published.tree_size}\n${published.root_hash}\n`;
  mark(root, "checkpoint", signed && states, signed && states ? `The checkpoint of ${published.created_at.slice(0, 16).replace("T", " ")} UTC is signed by the ledger's published key.` : "The checkpoint's signature does not check out.");
  const ok = sameLeaf && included && signed && states;
  summary(root, ok, ok ? "Verified in your browser: this entry is in the log, as shown." : "This entry did not verify. Keep a copy and tell an auditor.");
}

document.addEventListener("DOMContentLoaded", () => {
  for (const root of document.querySelectorAll("[data-verify]")) {
    const run = root.dataset.verify === "receipt" ? verifyReceipt : verifyEntry;
    if (!(crypto && crypto.subtle)) {
      summary(root, false, "This browser cannot check signatures here (it needs HTTPS and Web Crypto).");
      continue;
    }
    run(root).catch((error) => summary(root, false, `Could not check: ${error.message}`));
  }
});
