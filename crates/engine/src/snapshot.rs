//! Checkpoints of the whole engine, written incrementally.
//!
//! What never changes once made is an immutable object, written once: every sealed window
//! segment (Arrow IPC, LZ4) and every full chunk of a dictionary. Each object's name carries
//! a hash of its bytes (`seg-<first seq>-<hash>`, `dict-<which>-<chunk>-<hash>`), so a name
//! always means the same bytes, whatever engine made it. Everything else (the open segment,
//! dictionary tails, every lane's per-account states and counters, the reorder buffer, the
//! watermark) is the head, rewritten each time: a header (magic, format version, state
//! fingerprint, payload length, checksum) and an LZ4-compressed postcard payload. The
//! per-account window index is not saved: the segments' `account` column rebuilds it exactly.
//! Corrupt bytes are errors, never panics: objects are checked against their name's hash and
//! the head against its checksum before decoding, and decoded ids are bounds-checked.
//!
//! Not saved: the caller's settings (emit, clock, near misses kept) and outputs not yet
//! taken (near misses, lanes' alerts); derived caches are recomputed.

use std::borrow::Cow;
use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Mutex};

use compact_str::CompactString;
use fundwatch_record::AccountType;
use fundwatch_rules::large_value::LargeValueState;
use fundwatch_rules::periodic::BatchTracker;
use fundwatch_rules::rapid::CycleTracker;
use fundwatch_rules::scatter::CollectionTracker;
use fundwatch_rules::{Config, MemoTagger};
use fundwatch_window::{decode_batch, encode_batch, Flags, Interner, StoreMeta, WindowStore};
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64;

use crate::trace::Traces;
use crate::{AccountState, Clock, Engine, EngineStats, Lane, Pending};

/// Version of the checkpoint format; part of [`Engine::state_fingerprint`]. postcard is not
/// self-describing: any change to the head's types below or to the rule trackers' fields
/// must bump it (old checkpoints are then refused, and the service rebuilds from history).
pub const SNAPSHOT_FORMAT: u32 = 4;
/// Dictionary names per immutable object: small enough that the tails in the head stay
/// small (≤ ~80 KB each), large enough that a million names are a few hundred objects.
pub const DICTIONARY_CHUNK: usize = 1 << 12;
pub(crate) const MAX_DICTIONARY_CHUNK: usize = 1 << 24;
const MAGIC: [u8; 8] = *b"FWENGINE";
/// Magic, format, fingerprint, payload length (uncompressed), checksum (of what follows).
const HEADER_LEN: usize = 8 + 4 + 8 + 8 + 8;
const DICTS: [&str; 3] = ["accounts", "counterparties", "segments"];

/// What one checkpoint writes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Checkpoint {
    /// Immutable objects not yet written (per `written`): (name, bytes). A name always
    /// stands for the same bytes.
    pub objects: Vec<(String, Vec<u8>)>,
    /// Every immutable object a restore from this checkpoint needs (new and earlier ones).
    /// Earlier objects not listed may be deleted.
    pub needs: Vec<String>,
    /// All mutable state, serialised.
    pub head: Vec<u8>,
}

/// Why a checkpoint cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SnapshotError {
    #[error("checkpoint was made under another configuration (lane {lane}: state fingerprint {found:016x}, this config's is {expected:016x})")]
    Fingerprint { lane: usize, expected: u64, found: u64 },
    #[error("checkpoint object {0} is missing")]
    MissingObject(String),
    #[error("checkpoint object {name} is corrupt: {what}")]
    CorruptObject { name: String, what: String },
    #[error("checkpoint head is corrupt: {0}")]
    CorruptHead(String),
    #[error("checkpoint format version {found} is not supported (this build reads version {supported})")]
    UnsupportedFormat { found: u32, supported: u32 },
    #[error("checkpoint has {found} lane(s) but {given} config(s) were given")]
    Lanes { given: usize, found: usize },
}

fn corrupt(what: impl Into<String>) -> SnapshotError {
    SnapshotError::CorruptHead(what.into())
}

/// Content hashes of objects this engine already encoded (or was restored from).
#[derive(Default)]
pub(crate) struct NameCache {
    /// By first sequence number.
    segments: FxHashMap<u64, u64>,
    /// By dictionary, then chunk: ([`Interner::edits_in`] the chunk when encoded, hash).
    chunks: [Vec<(u64, u64)>; 3],
}

fn segment_name(first_seq: u64, hash: u64) -> String {
    format!("seg-{first_seq}-{hash:016x}")
}

fn chunk_name(dict: usize, chunk: usize, hash: u64) -> String {
    format!("dict-{}-{chunk}-{hash:016x}", DICTS[dict])
}

#[derive(Serialize, Deserialize)]
struct Head<'a> {
    dict_chunk: u64,
    dicts: Vec<DictHead<'a>>,
    store: StoreHead<'a>,
    pending: Vec<PendingHead<'a>>,
    arrivals: u64,
    max_ts: i64,
    released_up_to: i64,
    lanes: Vec<LaneHead<'a>>,
    /// Ledgers of accounts in play (format 2).
    traces: Cow<'a, Traces>,
    /// When the dictionaries were last swept (format 4).
    swept: crate::SweepState,
}

/// A record held by the event-time guard (`crate::guard`), written after the head.
#[derive(Serialize, Deserialize)]
struct HeldHead<'a> {
    tx_id: Cow<'a, str>,
    ts_ms: i64,
    account: Cow<'a, str>,
    counterparty: Cow<'a, str>,
    out: bool,
    amount: i64,
    is_cny: bool,
    currency: Cow<'a, str>,
    channel: u8,
    memo: Cow<'a, str>,
    corporate: bool,
    industry: Cow<'a, str>,
    region: Cow<'a, str>,
    cross_border: bool,
    position: u64,
    raw: Cow<'a, [u8]>,
    followers: u32,
    contradictions: u32,
}

impl<'a> HeldHead<'a> {
    fn of(h: &'a crate::guard::Held) -> HeldHead<'a> {
        let t = &h.tx;
        HeldHead {
            tx_id: Cow::Borrowed(&t.tx_id),
            ts_ms: t.ts_ms,
            account: Cow::Borrowed(&t.account),
            counterparty: Cow::Borrowed(&t.counterparty),
            out: t.direction == fundwatch_record::Direction::Out,
            amount: t.amount,
            is_cny: t.is_cny,
            currency: Cow::Borrowed(&t.currency),
            channel: t.channel as u8,
            memo: Cow::Borrowed(&t.memo),
            corporate: t.account_type == AccountType::Corporate,
            industry: Cow::Borrowed(&t.industry),
            region: Cow::Borrowed(&t.region),
            cross_border: t.cross_border,
            position: h.position,
            raw: Cow::Borrowed(&h.raw),
            followers: h.followers,
            contradictions: h.contradictions,
        }
    }

    fn into_held(self) -> crate::guard::Held {
        let own = |c: Cow<'_, str>| Cow::Owned(c.into_owned());
        crate::guard::Held {
            tx: fundwatch_record::Transaction {
                tx_id: own(self.tx_id),
                ts_ms: self.ts_ms,
                account: own(self.account),
                counterparty: own(self.counterparty),
                direction: if self.out {
                    fundwatch_record::Direction::Out
                } else {
                    fundwatch_record::Direction::In
                },
                amount: self.amount,
                is_cny: self.is_cny,
                currency: own(self.currency),
                channel: fundwatch_record::Channel::from_u8(self.channel),
                memo: own(self.memo),
                account_type: if self.corporate {
                    AccountType::Corporate
                } else {
                    AccountType::Personal
                },
                industry: own(self.industry),
                region: own(self.region),
                cross_border: self.cross_border,
            },
            position: self.position,
            raw: self.raw.into_owned(),
            followers: self.followers,
            contradictions: self.contradictions,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct DictHead<'a> {
    /// Content hashes of the full chunks.
    chunks: Vec<u64>,
    tail: Vec<Cow<'a, str>>,
    /// Every slot's last-seen stamp, by id (format 4).
    seen: Vec<u32>,
    /// Freed ids, in the order they are reused from the back (format 4).
    free: Vec<u32>,
}

#[derive(Serialize, Deserialize)]
struct StoreHead<'a> {
    segment_rows: u64,
    front_seq: u64,
    next_seq: u64,
    trims: Vec<(i64, u64)>,
    /// Content hashes of the sealed segments, oldest first.
    sealed: Vec<u64>,
    /// The open segment, Arrow IPC.
    open: Cow<'a, [u8]>,
}

#[derive(Serialize, Deserialize)]
struct PendingHead<'a> {
    ts_ms: i64,
    tx_id: Cow<'a, str>,
    arrival: u64,
    account: u32,
    counterparty: u32,
    amount: i64,
    flags: u16,
    account_type: u8,
    segment: (u32, u32),
}

#[derive(Serialize, Deserialize)]
struct LaneHead<'a> {
    fingerprint: u64,
    stats: Cow<'a, EngineStats>,
    states: Vec<StateHead<'a>>,
}

#[derive(Serialize, Deserialize)]
struct StateHead<'a> {
    segment: (u32, u32),
    account_type: u8,
    large_value: Cow<'a, LargeValueState>,
    batches: BatchTracker,
    cycles: Cow<'a, CycleTracker>,
    collection: Cow<'a, CollectionTracker>,
    /// (behavioural rule, quiet until) for the rules that are quiet.
    quiet: Vec<(u8, i64)>,
}

fn type_code(t: AccountType) -> u8 {
    match t {
        AccountType::Personal => 0,
        AccountType::Corporate => 1,
    }
}

fn type_of(code: u8) -> Result<AccountType, SnapshotError> {
    match code {
        0 => Ok(AccountType::Personal),
        1 => Ok(AccountType::Corporate),
        c => Err(corrupt(format!("account type {c}"))),
    }
}

fn encode<T: Serialize>(v: &T) -> Vec<u8> {
    // Serialising in-memory values into a Vec has no failure mode.
    postcard::to_allocvec(v).unwrap_or_else(|e| panic!("serialising engine state failed: {e}"))
}

/// Fetch an object and check its bytes against the hash in its name.
fn fetch(objects: &dyn Fn(&str) -> Option<Vec<u8>>, name: String, hash: u64) -> Result<Vec<u8>, SnapshotError> {
    let bytes = objects(&name).ok_or_else(|| SnapshotError::MissingObject(name.clone()))?;
    if xxh3_64(&bytes) != hash {
        return Err(SnapshotError::CorruptObject {
            name,
            what: "content does not match its name's hash".into(),
        });
    }
    Ok(bytes)
}

/// (fingerprint, compressed payload, its length uncompressed) of a head, checked.
fn open_head(head: &[u8]) -> Result<(u64, &[u8], usize), SnapshotError> {
    if head.len() < HEADER_LEN || head[..8] != MAGIC {
        return Err(corrupt("not a fundwatch engine checkpoint"));
    }
    let word = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&head[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let format = u32::from_le_bytes([head[8], head[9], head[10], head[11]]);
    if format != SNAPSHOT_FORMAT {
        return Err(SnapshotError::UnsupportedFormat {
            found: format,
            supported: SNAPSHOT_FORMAT,
        });
    }
    let (fingerprint, len, checksum) = (word(12), word(20), word(28));
    let payload = &head[HEADER_LEN..];
    if xxh3_64(payload) != checksum {
        return Err(corrupt("checksum mismatch"));
    }
    // LZ4 expands at most ~255-fold: a larger length is corrupt, not an allocation to try.
    let len = usize::try_from(len)
        .ok()
        .filter(|&l| l <= 256 * payload.len() + 1024)
        .ok_or_else(|| corrupt("payload length"))?;
    Ok((fingerprint, payload, len))
}

impl Engine {
    /// A fingerprint of everything that shapes the engine's state: the `[engine]`, `[memo]`,
    /// `[segments]` and `[rules]` sections (not `version`, `[kafka]` or `[service]`) and
    /// [`SNAPSHOT_FORMAT`]. A checkpoint restores only under a config with the same one.
    pub fn state_fingerprint(config: &Config) -> u64 {
        let text = format!("fundwatch engine state {SNAPSHOT_FORMAT}\n{}", config.thresholds_toml());
        xxh3_64(text.as_bytes())
    }

    /// The fingerprint a checkpoint head was made under (lane 0's), to skip a checkpoint of
    /// another config without restoring it.
    pub fn head_fingerprint(head: &[u8]) -> Result<u64, SnapshotError> {
        open_head(head).map(|(f, _, _)| f)
    }

    /// Checkpoint the whole state. `written`: names of objects already saved (by earlier
    /// checkpoints of this engine's lineage); those are listed in `needs` but not returned.
    /// Changes nothing that later detection sees. Take alerts and near misses first: outputs
    /// not yet taken are not part of the state.
    pub fn checkpoint(&self, written: &dyn Fn(&str) -> bool) -> Checkpoint {
        let mut cache = self.object_names.lock().unwrap_or_else(|e| e.into_inner());
        let mut objects = Vec::new();
        let mut needs = Vec::new();

        let meta = self.store.meta();
        cache.segments.retain(|&seq, _| seq >= meta.front_seq);
        let mut sealed = Vec::new();
        for (first_seq, batch) in self.store.sealed() {
            let known = cache.segments.get(&first_seq).copied();
            let mut bytes = None;
            let hash = match known {
                Some(h) => h,
                None => {
                    let b = encode_batch(batch);
                    let h = xxh3_64(&b);
                    cache.segments.insert(first_seq, h);
                    bytes = Some(b);
                    h
                }
            };
            let name = segment_name(first_seq, hash);
            if !written(&name) {
                objects.push((name.clone(), bytes.unwrap_or_else(|| encode_batch(batch))));
            }
            needs.push(name);
            sealed.push(hash);
        }

        let chunk = self.dict_chunk;
        let mut dicts = Vec::new();
        for (d, dict) in [&self.accounts, &self.counterparties, &self.segments]
            .into_iter()
            .enumerate()
        {
            let full = dict.len() / chunk;
            let known = &mut cache.chunks[d];
            known.truncate(full);
            for i in 0..full {
                let mut bytes = None;
                let range = i * chunk..(i + 1) * chunk;
                let encode_chunk = || encode(&(i as u64, dict.names(range.clone()).collect::<Vec<_>>()));
                // A chunk changes when a name in it is evicted or its id reused.
                let edits = dict.edits_in(range.clone());
                if known.get(i).is_none_or(|k| k.0 != edits) {
                    let b = encode_chunk();
                    let entry = (edits, xxh3_64(&b));
                    if i < known.len() {
                        known[i] = entry;
                    } else {
                        known.push(entry);
                    }
                    bytes = Some(b);
                }
                let name = chunk_name(d, i, known[i].1);
                if !written(&name) {
                    objects.push((name.clone(), bytes.unwrap_or_else(encode_chunk)));
                }
                needs.push(name);
            }
            dicts.push(DictHead {
                chunks: known.iter().map(|k| k.1).collect(),
                tail: dict.names(full * chunk..dict.len()).map(Cow::Borrowed).collect(),
                seen: dict.stamps().collect(),
                free: dict.free_ids().to_vec(),
            });
        }
        drop(cache);

        // Sorted, so that the same state always gives the same head.
        let mut pending: Vec<&Pending> = self.pending.iter().map(|Reverse(p)| p).collect();
        pending.sort_unstable();
        let head = Head {
            dict_chunk: chunk as u64,
            dicts,
            store: StoreHead {
                segment_rows: meta.segment_rows as u64,
                front_seq: meta.front_seq,
                next_seq: meta.next_seq,
                trims: meta.trims,
                sealed,
                open: Cow::Owned(encode_batch(&self.store.open_batch())),
            },
            pending: pending
                .into_iter()
                .map(|p| PendingHead {
                    ts_ms: p.ts_ms,
                    tx_id: Cow::Borrowed(p.tx_id.as_str()),
                    arrival: p.arrival,
                    account: p.account,
                    counterparty: p.counterparty,
                    amount: p.amount,
                    flags: p.flags.0,
                    account_type: type_code(p.account_type),
                    segment: p.segment,
                })
                .collect(),
            arrivals: self.arrivals,
            max_ts: self.max_ts,
            released_up_to: self.released_up_to,
            lanes: self
                .lanes
                .iter()
                .map(|l| LaneHead {
                    fingerprint: Engine::state_fingerprint(&l.config),
                    stats: Cow::Borrowed(&l.stats),
                    states: l
                        .states
                        .iter()
                        .map(|st| StateHead {
                            segment: st.segment,
                            account_type: type_code(st.account_type),
                            large_value: Cow::Borrowed(&st.large_value),
                            batches: st.batches,
                            cycles: Cow::Borrowed(&st.cycles),
                            collection: Cow::Borrowed(&st.collection),
                            quiet: (0u8..).zip(st.quiet_until).filter(|&(_, q)| q != i64::MIN).collect(),
                        })
                        .collect(),
                })
                .collect(),
            traces: Cow::Borrowed(&self.traces),
            swept: self.swept,
        };
        let mut payload = encode(&head);
        if !self.held.is_empty() {
            // After the head, so format-2 readers (which ignore trailing bytes) still restore.
            payload.extend(encode(&self.held.iter().map(HeldHead::of).collect::<Vec<_>>()));
        }
        let packed = lz4_flex::block::compress(&payload);
        let mut bytes = Vec::with_capacity(HEADER_LEN + packed.len());
        bytes.extend_from_slice(&MAGIC);
        bytes.extend_from_slice(&SNAPSHOT_FORMAT.to_le_bytes());
        bytes.extend_from_slice(&Engine::state_fingerprint(&self.lanes[0].config).to_le_bytes());
        bytes.extend_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes.extend_from_slice(&xxh3_64(&packed).to_le_bytes());
        bytes.extend_from_slice(&packed);
        Checkpoint {
            objects,
            needs,
            head: bytes,
        }
    }

    /// The engine a checkpoint was taken of. `config` must have the checkpoint's
    /// [`Engine::state_fingerprint`]; `objects` looks up immutable objects by name (all of
    /// the checkpoint's `needs`). The caller's settings start as in [`Engine::new`]: set
    /// emit, clock and near misses again. An engine with lanes: [`Engine::restore_lanes`].
    pub fn restore(
        config: Arc<Config>,
        head: &[u8],
        objects: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Engine, SnapshotError> {
        Engine::restore_lanes(&[config], head, objects)
    }

    /// [`Engine::restore`] of an engine with lanes: `configs[i]` is lane i's config.
    pub fn restore_lanes(
        configs: &[Arc<Config>],
        head: &[u8],
        objects: &dyn Fn(&str) -> Option<Vec<u8>>,
    ) -> Result<Engine, SnapshotError> {
        let (fingerprint, packed, len) = open_head(head)?;
        let first = configs.first().ok_or(SnapshotError::Lanes { given: 0, found: 1 })?;
        let expected = Engine::state_fingerprint(first);
        if fingerprint != expected {
            return Err(SnapshotError::Fingerprint {
                lane: 0,
                expected,
                found: fingerprint,
            });
        }
        let payload =
            lz4_flex::block::decompress(packed, len).map_err(|e| corrupt(format!("cannot decompress: {e}")))?;
        if payload.len() != len {
            return Err(corrupt("payload length"));
        }
        let (h, rest): (Head<'_>, &[u8]) =
            postcard::take_from_bytes(&payload).map_err(|e| corrupt(format!("cannot decode: {e}")))?;
        let held: Vec<HeldHead<'_>> = if rest.is_empty() {
            Vec::new()
        } else {
            postcard::from_bytes(rest).map_err(|e| corrupt(format!("cannot decode held records: {e}")))?
        };
        if h.lanes.len() != configs.len() {
            return Err(SnapshotError::Lanes {
                given: configs.len(),
                found: h.lanes.len(),
            });
        }
        for (lane, (lh, cfg)) in h.lanes.iter().zip(configs).enumerate() {
            let expected = Engine::state_fingerprint(cfg);
            if lh.fingerprint != expected {
                return Err(SnapshotError::Fingerprint {
                    lane,
                    expected,
                    found: lh.fingerprint,
                });
            }
        }

        let chunk = usize::try_from(h.dict_chunk)
            .ok()
            .filter(|c| (1..=MAX_DICTIONARY_CHUNK).contains(c))
            .ok_or_else(|| corrupt("dictionary chunk size"))?;
        if h.dicts.len() != DICTS.len() {
            return Err(corrupt("dictionary count"));
        }
        let mut cache = NameCache::default();
        let mut dicts = Vec::new();
        for (d, dh) in h.dicts.iter().enumerate() {
            if dh.tail.len() >= chunk {
                return Err(corrupt(format!("{} tail is a full chunk", DICTS[d])));
            }
            let mut names: Vec<CompactString> = Vec::new();
            for (i, &hash) in dh.chunks.iter().enumerate() {
                let name = chunk_name(d, i, hash);
                let bytes = fetch(objects, name.clone(), hash)?;
                let bad = |what: String| SnapshotError::CorruptObject {
                    name: name.clone(),
                    what,
                };
                let (index, part): (u64, Vec<String>) =
                    postcard::from_bytes(&bytes).map_err(|e| bad(format!("cannot decode: {e}")))?;
                if index != i as u64 || part.len() != chunk {
                    return Err(bad(format!("chunk {index} of {} names", part.len())));
                }
                names.extend(part.iter().map(|s| CompactString::from(s.as_str())));
            }
            names.extend(dh.tail.iter().map(|s| CompactString::from(s.as_ref())));
            let dict = Interner::from_parts(names.iter().map(CompactString::as_str), &dh.seen, &dh.free)
                .map_err(|e| corrupt(format!("{}: {e}", DICTS[d])))?;
            cache.chunks[d] = dh
                .chunks
                .iter()
                .enumerate()
                .map(|(i, &h)| (dict.edits_in(i * chunk..(i + 1) * chunk), h))
                .collect();
            dicts.push(dict);
        }
        let (Some(segments), Some(counterparties), Some(accounts)) = (dicts.pop(), dicts.pop(), dicts.pop()) else {
            return Err(corrupt("dictionary count"));
        };

        let sh = &h.store;
        let rows = usize::try_from(sh.segment_rows).map_err(|_| corrupt("segment rows"))?;
        let mut sealed = Vec::with_capacity(sh.sealed.len());
        for (i, &hash) in sh.sealed.iter().enumerate() {
            let first_seq = (i as u64)
                .checked_mul(sh.segment_rows)
                .and_then(|o| o.checked_add(sh.front_seq))
                .ok_or_else(|| corrupt("sequence numbers overflow"))?;
            let name = segment_name(first_seq, hash);
            let bytes = fetch(objects, name.clone(), hash)?;
            let batch = decode_batch(&bytes).map_err(|e| SnapshotError::CorruptObject {
                name,
                what: e.to_string(),
            })?;
            cache.segments.insert(first_seq, hash);
            sealed.push(batch);
        }
        let open = decode_batch(&sh.open).map_err(|e| corrupt(format!("open segment: {e}")))?;
        let meta = StoreMeta {
            segment_rows: rows,
            front_seq: sh.front_seq,
            next_seq: sh.next_seq,
            trims: sh.trims.clone(),
        };
        let store = WindowStore::restore(meta, sealed, &open, accounts.len(), counterparties.len())
            .map_err(|e| corrupt(format!("window: {e}")))?;

        let segment_ok = |s: (u32, u32)| (s.0 as usize) < segments.len() && (s.1 as usize) < segments.len();
        let mut pending = BinaryHeap::with_capacity(h.pending.len());
        for p in &h.pending {
            if p.account as usize >= accounts.len()
                || p.counterparty as usize >= counterparties.len()
                || !segment_ok(p.segment)
                || p.arrival > h.arrivals
            {
                return Err(corrupt("a waiting record names an unknown id"));
            }
            pending.push(Reverse(Pending {
                ts_ms: p.ts_ms,
                tx_id: CompactString::from(p.tx_id.as_ref()),
                arrival: p.arrival,
                account: p.account,
                counterparty: p.counterparty,
                amount: p.amount,
                flags: Flags(p.flags),
                account_type: type_of(p.account_type)?,
                segment: p.segment,
            }));
        }

        let mut lanes = Vec::with_capacity(configs.len());
        for (lh, cfg) in h.lanes.into_iter().zip(configs) {
            let mut lane = Lane::new(cfg.clone());
            lane.stats = lh.stats.into_owned();
            if lh.states.len() > accounts.len() {
                return Err(corrupt("more account states than accounts"));
            }
            lane.states.reserve_exact(lh.states.len());
            for s in lh.states {
                let mut st = AccountState::placeholder();
                st.segment = s.segment;
                st.account_type = type_of(s.account_type)?;
                st.large_value = s.large_value.into_owned();
                st.batches = s.batches;
                st.cycles = s.cycles.into_owned();
                st.collection = s.collection.into_owned();
                for (b, q) in s.quiet {
                    *st.quiet_until
                        .get_mut(b as usize)
                        .ok_or_else(|| corrupt("quiet rule index"))? = q;
                }
                if st.has_segment() {
                    if !segment_ok(st.segment) {
                        return Err(corrupt("an account state names an unknown segment"));
                    }
                    st.rules = lane.resolve_rules(st.account_type, st.segment, &segments);
                    st.key_sector = lane.is_key_sector(segments.resolve(st.segment.0));
                } else if st.segment.1 != u32::MAX {
                    return Err(corrupt("an account state names an unknown segment"));
                }
                lane.states.push(st);
            }
            lanes.push(lane);
        }

        Ok(Engine {
            tagger: MemoTagger::new(&first.memo),
            accounts,
            counterparties,
            segments,
            lanes,
            store,
            pending,
            arrivals: h.arrivals,
            max_ts: h.max_ts,
            released_up_to: h.released_up_to,
            emit: true,
            keep_near_misses: false,
            near_misses: Vec::new(),
            tracing: false,
            traces: h.traces.into_owned(),
            traces_out: Vec::new(),
            clock: Clock::Wall,
            held: held.into_iter().map(HeldHead::into_held).collect(),
            time_rejected: Vec::new(),
            guard_stats: Default::default(),
            dict_chunk: chunk,
            object_names: Mutex::new(cache),
            swept: h.swept,
            evict_names: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A head whose payload is mangled but whose checksum is recomputed, so the decoder and
    /// the checks behind it see the damage: errors, never a panic.
    #[test]
    fn mangled_payloads_are_errors() {
        use fundwatch_record::{Channel, Direction, Transaction};
        use std::borrow::Cow as C;
        let cfg = Arc::new(Config::default());
        let mut e = Engine::with_chunk_sizes(cfg.clone(), 8, 4);
        let mut out = Vec::new();
        for i in 0..60i64 {
            let tx = Transaction {
                tx_id: C::Owned(format!("T{i}")),
                ts_ms: 1_770_000_000_000 + i * 60_000 - (i % 7) * 200_000,
                account: C::Owned(format!("A{}", i % 9)),
                counterparty: C::Owned(format!("C{}", i % 13)),
                direction: if i % 3 == 0 { Direction::Out } else { Direction::In },
                amount: 10_000 * (i + 1),
                is_cny: true,
                currency: C::Borrowed("CNY"),
                channel: Channel::Transfer,
                memo: C::Borrowed(""),
                account_type: AccountType::Personal,
                industry: C::Borrowed("retail"),
                region: C::Borrowed("330106"),
                cross_border: false,
            };
            e.process(&tx, &mut out);
        }
        let cp = e.checkpoint(&|_| false);
        let objects: FxHashMap<String, Vec<u8>> = cp.objects.into_iter().collect();
        let get = |n: &str| objects.get(n).cloned();
        assert!(Engine::restore(cfg.clone(), &cp.head, &get).is_ok());
        let (_, packed, len) = open_head(&cp.head).unwrap();
        let payload = lz4_flex::block::decompress(packed, len).unwrap();
        let reseal = |p: &[u8]| {
            let packed = lz4_flex::block::compress(p);
            let mut h = cp.head[..HEADER_LEN].to_vec();
            h[20..28].copy_from_slice(&(p.len() as u64).to_le_bytes());
            h[28..36].copy_from_slice(&xxh3_64(&packed).to_le_bytes());
            h.extend_from_slice(&packed);
            h
        };
        assert!(Engine::restore(cfg.clone(), &reseal(&payload), &get).is_ok());
        let mut x = 0x9e37_79b9_7f4a_7c15u64;
        let mut errors = 0;
        for round in 0..3_000 {
            let mut p = payload.to_vec();
            for _ in 0..1 + round % 3 {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                let i = (x as usize) % p.len();
                p[i] = (x >> 32) as u8;
            }
            if round % 10 == 0 {
                p.truncate((x as usize >> 8) % p.len());
            }
            errors += usize::from(Engine::restore(cfg.clone(), &reseal(&p), &get).is_err());
        }
        assert!(errors > 1_000, "{errors}");
    }
}
