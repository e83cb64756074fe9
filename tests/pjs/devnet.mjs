// polkadot.js (@polkadot/api, pinned in package-lock.json) against `connito devnet`:
// `node devnet.mjs ws://127.0.0.1:PORT`. Connects, reads `System.Account` of //Alice and the
// chain's constants, signs and lands a `Balances.transfer_keep_alive` to //Bob, then opens a
// second connection that follows three new heads and unsubscribes. Every RPC method called is
// logged (an answer "Method not found" fails the run). Prints one JSON object with the findings
// and exits 0; on any failure it prints the error (and what it found so far) on stderr and exits
// 1. A hard timeout ends a run that hangs. Run by tests/it/devnet_pjs.rs.

import { ApiPromise, WsProvider } from '@polkadot/api';
import { Keyring } from '@polkadot/keyring';
import { cryptoWaitReady } from '@polkadot/util-crypto';

const TIMEOUT_MS = Number(process.env.CONNITO_PJS_TIMEOUT_MS || 60_000);
const AMOUNT = 1_234_567_890n; // rao
const HEADS = 3;

const url = process.argv[2];
if (!url) {
  console.error('usage: node devnet.mjs ws://127.0.0.1:PORT');
  process.exit(2);
}

const found = { methods: {}, runtime_calls: {}, errors: [], unsubscribes: [] };

function describe(e) {
  // A socket error arrives as an ErrorEvent, its cause in `error` or `message`.
  return e?.stack || e?.error?.stack || e?.message || String(e);
}

function fail(why) {
  console.error(`pjs conformance failed: ${describe(why)}`);
  console.error(`found so far: ${JSON.stringify(found, bigints)}`);
  process.exit(1);
}

function bigints(_key, v) {
  return typeof v === 'bigint' ? v.toString() : v;
}

process.on('unhandledRejection', (e) => fail(`unhandled rejection: ${describe(e)}`));
process.on('uncaughtException', (e) => fail(`uncaught exception: ${describe(e)}`));
// Kept referenced: it also keeps node from exiting (status 0) on a promise nothing will settle.
setTimeout(() => fail(`timed out after ${TIMEOUT_MS} ms`), TIMEOUT_MS);

// A WsProvider that counts every method sent (calls, subscribes and unsubscribes all go through
// `send`), the runtime APIs `state_call` asks for, every error answer and every unsubscribe's
// answer.
class LoggingProvider extends WsProvider {
  constructor(endpoint, label) {
    // No auto-connect or reconnect (connected by hand below): a dropped connection fails.
    super(endpoint, 0);
    this.label = label;
  }

  send(method, params, isCacheable, subscription) {
    found.methods[method] = (found.methods[method] || 0) + 1;
    if (method === 'state_call') {
      found.runtime_calls[params[0]] = (found.runtime_calls[params[0]] || 0) + 1;
    }
    return super.send(method, params, isCacheable, subscription).catch((e) => {
      found.errors.push({ connection: this.label, method, error: describe(e).split('\n')[0] });
      throw e;
    });
  }

  async unsubscribe(type, method, id) {
    const result = await super.unsubscribe(type, method, id);
    found.unsubscribes.push({ connection: this.label, method, result });
    return result;
  }
}

function check(cond, what) {
  if (!cond) {
    throw new Error(`check failed: ${what}`);
  }
}

async function connect(label) {
  const provider = new LoggingProvider(url, label);
  await provider.connect();
  const api = await ApiPromise.create({ provider, throwOnConnect: true, noInitWarn: true });
  return api;
}

// Signs and sends `tx` from `signer`; resolves with the block hash and events once it is in a
// block (rejects on an invalid, dropped or failed extrinsic).
function landed(tx, signer) {
  return new Promise((resolve, reject) => {
    const statuses = [];
    let unsub = null;
    let done = false;
    const finish = (f, v) => {
      if (done) return;
      done = true;
      if (unsub) unsub();
      f(v);
    };
    tx.signAndSend(signer, (result) => {
      const { status, events, dispatchError } = result;
      statuses.push(status.type);
      if (dispatchError) {
        finish(reject, new Error(`dispatch error ${dispatchError.toString()}`));
      } else if (status.isInBlock || status.isFinalized) {
        const blockHash = (status.isInBlock ? status.asInBlock : status.asFinalized).toHex();
        finish(resolve, { blockHash, events, statuses, txHash: tx.hash.toHex() });
      } else if (status.isDropped || status.isInvalid || status.isUsurped || status.isRetracted) {
        finish(reject, new Error(`extrinsic ${status.type}`));
      }
    })
      .then((u) => {
        unsub = u;
        if (done) u();
      })
      .catch((e) => finish(reject, e));
  });
}

async function main() {
  await cryptoWaitReady();
  const keyring = new Keyring({ type: 'sr25519', ss58Format: 42 });
  const alice = keyring.addFromUri('//Alice');
  const bob = keyring.addFromUri('//Bob');
  found.alice = alice.address;
  found.bob = bob.address;

  // (b) Connect and read.
  const api = await connect('main');
  found.connect_methods = Object.keys(found.methods).sort();
  const version = api.runtimeVersion;
  found.spec_name = version.specName.toString();
  found.spec_version = version.specVersion.toNumber();
  found.transaction_version = version.transactionVersion.toNumber();
  found.genesis_hash = api.genesisHash.toHex();
  found.chain = (await api.rpc.system.chain()).toString();
  found.ss58_format = api.registry.chainSS58;
  found.token = { decimals: api.registry.chainDecimals, symbol: api.registry.chainTokens };
  found.extrinsic_version = api.extrinsicVersion;
  found.signed_extensions = api.registry.signedExtensions;
  found.consts = {
    existential_deposit: api.consts.balances.existentialDeposit.toBigInt(),
    block_hash_count: api.consts.system.blockHashCount.toNumber(),
    ss58_prefix: api.consts.system.ss58Prefix.toNumber(),
    system_version_spec: api.consts.system.version.specVersion.toNumber(),
  };
  const before = await api.query.system.account(alice.address);
  const bobBefore = (await api.query.system.account(bob.address)).data.free.toBigInt();
  found.alice_before = {
    nonce: before.nonce.toNumber(),
    free: before.data.free.toBigInt(),
  };
  found.bob_before = bobBefore;
  const header = await api.rpc.chain.getHeader();
  found.best_at_connect = header.number.toNumber();

  // (c) A signed transfer, landed.
  const tx = api.tx.balances.transferKeepAlive(bob.address, AMOUNT);
  const out = await landed(tx, alice);
  found.transfer = {
    amount: AMOUNT,
    tx_hash: out.txHash,
    block_hash: out.blockHash,
    statuses: out.statuses,
    events: out.events.map(({ event }) => `${event.section}.${event.method}`),
  };
  const transferEvent = out.events.find(({ event }) => api.events.balances.Transfer.is(event));
  check(transferEvent, 'a balances.Transfer event');
  const [from, to, amount] = transferEvent.event.data;
  found.transfer.event = { from: from.toString(), to: to.toString(), amount: amount.toBigInt() };
  check(
    out.events.some(({ event }) => api.events.system.ExtrinsicSuccess.is(event)),
    'a system.ExtrinsicSuccess event',
  );
  const blockHeader = await api.rpc.chain.getHeader(out.blockHash);
  found.transfer.block = blockHeader.number.toNumber();
  // Balances as of the inclusion block and of the best block.
  const atBlock = await api.at(out.blockHash);
  const bobAt = (await atBlock.query.system.account(bob.address)).data.free.toBigInt();
  const after = await api.query.system.account(alice.address);
  const bobAfter = (await api.query.system.account(bob.address)).data.free.toBigInt();
  found.bob_at_block = bobAt;
  found.bob_after = bobAfter;
  found.alice_after = { nonce: after.nonce.toNumber(), free: after.data.free.toBigInt() };
  found.bob_received = bobAfter - bobBefore;
  check(bobAfter - bobBefore === AMOUNT, `Bob received ${bobAfter - bobBefore}, not ${AMOUNT}`);
  check(after.nonce.toNumber() === before.nonce.toNumber() + 1, 'Alice nonce +1');

  // (d) A second connection follows new heads, then unsubscribes.
  const api2 = await connect('heads');
  const heads = [];
  let unsubHeads = null;
  await new Promise((resolve, reject) => {
    api2.rpc.chain
      .subscribeNewHeads((h) => {
        heads.push(h.number.toNumber());
        if (heads.length === HEADS) resolve();
      })
      .then((u) => {
        unsubHeads = u;
      })
      .catch(reject);
  });
  found.heads = heads.slice(0, HEADS);
  for (let i = 1; i < found.heads.length; i++) {
    check(found.heads[i] > found.heads[i - 1], `heads increase: ${found.heads}`);
  }
  // polkadot.js unsubscribes 1.75 s after the last listener leaves; wait for the answer.
  unsubHeads();
  for (let i = 0; i < 100 && !found.unsubscribes.some((u) => u.connection === 'heads'); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  const unsub = found.unsubscribes.find((u) => u.connection === 'heads');
  check(unsub, 'the head subscription was closed');
  found.unsubscribe = unsub;
  check(unsub.result === true, `unsubscribe answered ${unsub.result}`);

  await api2.disconnect();
  await api.disconnect();
  found.methods_called = Object.keys(found.methods).sort();
  const notFound = found.errors.filter((e) => /method not found|-32601/i.test(e.error));
  check(notFound.length === 0, `methods not found: ${JSON.stringify(notFound)}`);
  check(found.errors.length === 0, `error answers: ${JSON.stringify(found.errors)}`);
  process.stdout.write(`${JSON.stringify(found, bigints)}\n`);
  process.exit(0);
}

main().catch(fail);
