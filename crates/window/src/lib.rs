//! Event-time window state for one partition of the stream.
//!
//! Records are appended to Arrow columnar segments (an open segment of builders, sealed into a
//! `RecordBatch` every [`SEGMENT_ROWS`] rows) and addressed by a sequence number. Each account
//! keeps a time-ordered index of its sequence numbers, so rules read one account's history
//! without scanning the partition. Account numbers are dictionary-encoded by [`Interner`];
//! memos are reduced to tag bits before they get here. Eviction drops whole sealed segments
//! once all their rows are older than the longest rule horizon — O(1) per record, no per-row
//! frees. Per held record this is 26 bytes of columns (the `account` column lets a restore
//! rebuild the per-account index instead of saving it) + the tx_id bytes and offset + 4 bytes
//! of index.
//!
//! Checkpoints: sealed segments never change, so they are saved once as Arrow IPC
//! ([`encode_batch`]); only the open segment and [`StoreMeta`] change between checkpoints.
//! [`WindowStore::restore`] rebuilds the index exactly from those.

mod interner;

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt16Builder, UInt32Builder};
use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt16Array, UInt32Array};
use arrow_ipc::writer::{IpcWriteOptions, StreamWriter};
use arrow_ipc::CompressionType;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use fundwatch_record::{Channel, Direction};

pub use interner::{AccountId, Interner};

/// Rows per segment. Large enough that per-segment overhead vanishes, small enough that
/// eviction granularity (and the memory held past the horizon) stays modest.
pub const SEGMENT_ROWS: usize = 1 << 16;

/// Per-record bit flags: channel (bits 0–3), direction (bit 4), cross-border (bit 5),
/// rule-defined memo tags (bits 8–15).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Flags(pub u16);

impl Flags {
    pub fn new(channel: Channel, direction: Direction, cross_border: bool, memo_tags: u8) -> Self {
        let mut v = channel as u16;
        if direction == Direction::Out {
            v |= 1 << 4;
        }
        if cross_border {
            v |= 1 << 5;
        }
        Flags(v | (u16::from(memo_tags) << 8))
    }
    #[inline]
    pub fn channel(self) -> Channel {
        Channel::from_u8((self.0 & 0xf) as u8)
    }
    #[inline]
    pub fn direction(self) -> Direction {
        if self.0 & (1 << 4) != 0 {
            Direction::Out
        } else {
            Direction::In
        }
    }
    #[inline]
    pub fn is_in(self) -> bool {
        self.0 & (1 << 4) == 0
    }
    #[inline]
    pub fn cross_border(self) -> bool {
        self.0 & (1 << 5) != 0
    }
    #[inline]
    pub fn memo_tags(self) -> u8 {
        (self.0 >> 8) as u8
    }
}

/// A held record as rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub seq: u64,
    pub ts_ms: i64,
    /// Fen.
    pub amount: i64,
    pub counterparty: AccountId,
    pub flags: Flags,
}

/// What the engine appends.
#[derive(Debug, Clone, Copy)]
pub struct NewRow<'a> {
    pub ts_ms: i64,
    pub amount: i64,
    pub counterparty: AccountId,
    pub flags: Flags,
    pub tx_id: &'a str,
}

struct OpenSegment {
    ts: TimestampMillisecondBuilder,
    amount: Int64Builder,
    counterparty: UInt32Builder,
    flags: UInt16Builder,
    tx_id: StringBuilder,
    account: UInt32Builder,
    max_ts: i64,
    min_ts: i64,
}

struct SealedSegment {
    batch: RecordBatch,
    ts: TimestampMillisecondArray,
    amount: Int64Array,
    counterparty: UInt32Array,
    flags: UInt16Array,
    tx_id: StringArray,
    account: UInt32Array,
    max_ts: i64,
    min_ts: i64,
}

enum Segment {
    Open(Box<OpenSegment>),
    Sealed(Box<SealedSegment>),
}

impl Segment {
    fn new_open(rows: usize) -> Self {
        Segment::Open(Box::new(OpenSegment {
            ts: TimestampMillisecondBuilder::with_capacity(rows),
            amount: Int64Builder::with_capacity(rows),
            counterparty: UInt32Builder::with_capacity(rows),
            flags: UInt16Builder::with_capacity(rows),
            tx_id: StringBuilder::with_capacity(rows, rows * 12),
            account: UInt32Builder::with_capacity(rows),
            max_ts: i64::MIN,
            min_ts: i64::MAX,
        }))
    }

    /// An open segment holding `batch`'s rows.
    fn open_from(batch: &RecordBatch, rows: usize) -> Result<Self, RestoreError> {
        let c = Columns::of(batch)?;
        let Segment::Open(mut o) = Segment::new_open(rows) else {
            unreachable!("new_open is open")
        };
        o.ts.append_slice(c.ts.values());
        o.amount.append_slice(c.amount.values());
        o.counterparty.append_slice(c.counterparty.values());
        o.flags.append_slice(c.flags.values());
        o.account.append_slice(c.account.values());
        for i in 0..c.tx_id.len() {
            o.tx_id.append_value(c.tx_id.value(i));
        }
        o.max_ts = c.ts.values().iter().copied().max().unwrap_or(i64::MIN);
        o.min_ts = c.ts.values().iter().copied().min().unwrap_or(i64::MAX);
        Ok(Segment::Open(o))
    }

    fn sealed_from(batch: RecordBatch) -> Result<Self, RestoreError> {
        let c = Columns::of(&batch)?;
        let max_ts = c.ts.values().iter().copied().max().unwrap_or(i64::MIN);
        let min_ts = c.ts.values().iter().copied().min().unwrap_or(i64::MAX);
        Ok(Segment::Sealed(Box::new(SealedSegment {
            ts: c.ts,
            amount: c.amount,
            counterparty: c.counterparty,
            flags: c.flags,
            tx_id: c.tx_id,
            account: c.account,
            max_ts,
            min_ts,
            batch,
        })))
    }

    #[inline]
    fn account(&self, i: usize) -> AccountId {
        match self {
            Segment::Open(o) => o.account.values_slice()[i],
            Segment::Sealed(s) => s.account.value(i),
        }
    }

    fn len(&self) -> usize {
        match self {
            Segment::Open(o) => o.ts.values_slice().len(),
            Segment::Sealed(s) => s.batch.num_rows(),
        }
    }

    #[inline]
    fn row(&self, i: usize, seq: u64) -> Row {
        match self {
            Segment::Open(o) => Row {
                seq,
                ts_ms: o.ts.values_slice()[i],
                amount: o.amount.values_slice()[i],
                counterparty: o.counterparty.values_slice()[i],
                flags: Flags(o.flags.values_slice()[i]),
            },
            Segment::Sealed(s) => Row {
                seq,
                ts_ms: s.ts.value(i),
                amount: s.amount.value(i),
                counterparty: s.counterparty.value(i),
                flags: Flags(s.flags.value(i)),
            },
        }
    }

    #[inline]
    fn ts(&self, i: usize) -> i64 {
        match self {
            Segment::Open(o) => o.ts.values_slice()[i],
            Segment::Sealed(s) => s.ts.value(i),
        }
    }

    fn tx_id(&self, i: usize) -> &str {
        match self {
            Segment::Open(o) => {
                let offs = o.tx_id.offsets_slice();
                let bytes = &o.tx_id.values_slice()[offs[i] as usize..offs[i + 1] as usize];
                // Only whole `&str`s were appended, so every span is valid UTF-8.
                std::str::from_utf8(bytes).unwrap_or("")
            }
            Segment::Sealed(s) => s.tx_id.value(i),
        }
    }

    fn max_ts(&self) -> i64 {
        match self {
            Segment::Open(o) => o.max_ts,
            Segment::Sealed(s) => s.max_ts,
        }
    }

    /// `i64::MAX` while empty.
    fn min_ts(&self) -> i64 {
        match self {
            Segment::Open(o) => o.min_ts,
            Segment::Sealed(s) => s.min_ts,
        }
    }

    fn heap_bytes(&self) -> usize {
        match self {
            // Builders hold their full capacity whether or not it is used yet.
            Segment::Open(o) => {
                o.ts.capacity() * 8
                    + o.amount.capacity() * 8
                    + o.counterparty.capacity() * 4
                    + o.account.capacity() * 4
                    + o.flags.capacity() * 2
                    + o.tx_id.values_slice().len()
                    + o.tx_id.offsets_slice().len() * 4
            }
            Segment::Sealed(s) => s.batch.get_array_memory_size(),
        }
    }

    fn seal(self, schema: &SchemaRef) -> Segment {
        let Segment::Open(mut o) = self else { return self };
        let ts = o.ts.finish();
        let amount = o.amount.finish();
        let counterparty = o.counterparty.finish();
        let flags = o.flags.finish();
        let tx_id = o.tx_id.finish();
        let account = o.account.finish();
        let columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(ts.clone()),
            Arc::new(amount.clone()),
            Arc::new(counterparty.clone()),
            Arc::new(flags.clone()),
            Arc::new(tx_id.clone()),
            Arc::new(account.clone()),
        ];
        match RecordBatch::try_new(schema.clone(), columns) {
            Ok(batch) => Segment::Sealed(Box::new(SealedSegment {
                batch,
                ts,
                amount,
                counterparty,
                flags,
                tx_id,
                account,
                max_ts: o.max_ts,
                min_ts: o.min_ts,
            })),
            // The columns are built together row by row; a mismatch is a bug here, not bad input.
            Err(e) => panic!("window segment columns disagree: {e}"),
        }
    }
}

/// Schema of a sealed window segment.
pub fn segment_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("ts", DataType::Timestamp(TimeUnit::Millisecond, None), false),
        Field::new("amount_fen", DataType::Int64, false),
        Field::new("counterparty", DataType::UInt32, false),
        Field::new("flags", DataType::UInt16, false),
        Field::new("tx_id", DataType::Utf8, false),
        Field::new("account", DataType::UInt32, false),
    ]))
}

/// Why stored window state cannot be restored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreError {
    #[error("not a readable Arrow IPC stream: {0}")]
    Ipc(String),
    #[error("inconsistent window state: {0}")]
    Invalid(String),
}

fn invalid(what: impl Into<String>) -> RestoreError {
    RestoreError::Invalid(what.into())
}

/// A segment batch's typed columns.
struct Columns {
    ts: TimestampMillisecondArray,
    amount: Int64Array,
    counterparty: UInt32Array,
    flags: UInt16Array,
    tx_id: StringArray,
    account: UInt32Array,
}

impl Columns {
    fn of(batch: &RecordBatch) -> Result<Columns, RestoreError> {
        if batch.schema().fields() != segment_schema().fields() {
            return Err(invalid(format!("segment schema is {:?}", batch.schema())));
        }
        if batch.columns().iter().any(|c| c.null_count() > 0) {
            return Err(invalid("segment has nulls"));
        }
        fn col<T: Array + Clone + 'static>(b: &RecordBatch, i: usize) -> Result<T, RestoreError> {
            b.column(i)
                .as_any()
                .downcast_ref::<T>()
                .cloned()
                .ok_or_else(|| invalid(format!("segment column {i} has the wrong type")))
        }
        Ok(Columns {
            ts: col(batch, 0)?,
            amount: col(batch, 1)?,
            counterparty: col(batch, 2)?,
            flags: col(batch, 3)?,
            tx_id: col(batch, 4)?,
            account: col(batch, 5)?,
        })
    }
}

/// One segment batch as an Arrow IPC stream, LZ4-compressed: the bytes of a checkpoint object.
pub fn encode_batch(batch: &RecordBatch) -> Vec<u8> {
    let write = || -> Result<Vec<u8>, arrow_schema::ArrowError> {
        let opts = IpcWriteOptions::default().try_with_compression(Some(CompressionType::LZ4_FRAME))?;
        let mut w = StreamWriter::try_new_with_options(Vec::new(), &batch.schema(), opts)?;
        w.write(batch)?;
        w.into_inner()
    };
    // Writing a well-formed in-memory batch into a Vec has no failure mode.
    write().unwrap_or_else(|e| panic!("encoding a window segment failed: {e}"))
}

/// An IPC message's (metadata, body).
type Message<'a> = (&'a [u8], &'a [u8]);

/// The messages (metadata, body) of an IPC stream, framing checked before the Arrow reader
/// sees them: it allocates what headers and compressed buffers claim, so lengths past the
/// input (or past what LZ4 can expand to) would abort the process instead of failing.
fn split_messages(bytes: &[u8]) -> Result<Vec<Message<'_>>, RestoreError> {
    let short = || invalid("IPC stream is truncated or has bad lengths");
    let word = |at: usize| -> Result<i32, RestoreError> {
        let b = bytes.get(at..at + 4).ok_or_else(short)?;
        Ok(i32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    };
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let mut meta_len = word(pos)?;
        pos += 4;
        if meta_len == -1 {
            meta_len = word(pos)?;
            pos += 4;
        }
        if meta_len == 0 {
            break;
        }
        let meta_len = usize::try_from(meta_len).map_err(|_| short())?;
        let meta = bytes.get(pos..pos.saturating_add(meta_len)).ok_or_else(short)?;
        let msg = arrow_ipc::root_as_message(meta).map_err(|e| RestoreError::Ipc(e.to_string()))?;
        pos += meta_len;
        let body_len = usize::try_from(msg.bodyLength()).map_err(|_| short())?;
        let body = bytes.get(pos..pos.saturating_add(body_len)).ok_or_else(short)?;
        pos += body_len;
        out.push((meta, body));
    }
    Ok(out)
}

/// The batch header's buffers fit the body and our columns (6 columns: a validity and a value
/// buffer each, plus offsets for tx_id), so the reader neither overreads nor allocates what
/// a corrupt header claims.
fn check_buffers(rb: &arrow_ipc::RecordBatch<'_>, body: &[u8]) -> Result<(), RestoreError> {
    // Element width of each buffer (0: validity).
    const WIDTHS: [usize; 13] = [0, 8, 0, 8, 0, 4, 0, 2, 0, 4, 1, 0, 4];
    let bad = || invalid("bad record batch header");
    if !(0..1 << 30).contains(&rb.length())
        || rb.nodes().is_none_or(|n| n.len() != 6)
        || rb.variadicBufferCounts().is_some_and(|v| !v.is_empty())
    {
        return Err(bad());
    }
    let buffers = rb.buffers().ok_or_else(bad)?;
    if buffers.len() != WIDTHS.len() {
        return Err(bad());
    }
    let compressed = rb.compression().is_some();
    for (b, width) in buffers.iter().zip(WIDTHS) {
        let (Ok(off), Ok(len)) = (usize::try_from(b.offset()), usize::try_from(b.length())) else {
            return Err(bad());
        };
        let buf = body.get(off..off.saturating_add(len)).ok_or_else(bad)?;
        let mut size = len;
        if compressed && len > 0 {
            let h = buf.get(..8).ok_or_else(bad)?;
            let claimed = i64::from_le_bytes([h[0], h[1], h[2], h[3], h[4], h[5], h[6], h[7]]);
            size = match claimed {
                -1 => len - 8,
                // LZ4 expands at most ~255-fold.
                c if (0..=256 * len as i64 + 1024).contains(&c) => c as usize,
                _ => return Err(invalid("compressed buffer claims an impossible size")),
            };
        }
        if off % 8 != 0 || (width > 0 && size % width != 0) {
            return Err(bad());
        }
    }
    Ok(())
}

/// The batch of [`encode_batch`] bytes. Bad bytes give an error, never a panic: the schema
/// is ours (only its field names are compared), the framing is checked, and the reader
/// validates the columns.
pub fn decode_batch(bytes: &[u8]) -> Result<RecordBatch, RestoreError> {
    let msgs = split_messages(bytes)?;
    let [(schema_meta, _), (batch_meta, body)] = msgs.as_slice() else {
        return Err(invalid(format!(
            "{} IPC messages, not a schema and one batch",
            msgs.len()
        )));
    };
    let bad_schema = || invalid("not a window segment (schema differs)");
    let names: Vec<&str> = arrow_ipc::root_as_message(schema_meta)
        .ok()
        .and_then(|m| m.header_as_schema())
        .and_then(|s| s.fields())
        .ok_or_else(bad_schema)?
        .iter()
        .map(|f| f.name().unwrap_or(""))
        .collect();
    let schema = segment_schema();
    if !names
        .iter()
        .copied()
        .eq(schema.fields().iter().map(|f| f.name().as_str()))
    {
        return Err(bad_schema());
    }
    let msg = arrow_ipc::root_as_message(batch_meta).map_err(|e| RestoreError::Ipc(e.to_string()))?;
    let rb = msg
        .header_as_record_batch()
        .ok_or_else(|| invalid("second message is not a record batch"))?;
    check_buffers(&rb, body)?;
    // A 64-byte aligned copy, so that 8-aligned buffer offsets give aligned columns.
    let mut aligned = arrow_buffer::MutableBuffer::from_len_zeroed(body.len());
    aligned.as_slice_mut().copy_from_slice(body);
    let body = arrow_buffer::Buffer::from(aligned);
    let read = || {
        arrow_ipc::reader::read_record_batch(&body, rb, schema, &Default::default(), None, &msg.version())
            .map_err(|e| RestoreError::Ipc(e.to_string()))
    };
    // A last net: the reader is not documented panic-free on crafted input.
    let batch = std::panic::catch_unwind(std::panic::AssertUnwindSafe(read))
        .unwrap_or_else(|_| Err(RestoreError::Ipc("reader panicked on malformed input".into())))?;
    Columns::of(&batch)?;
    Ok(batch)
}

/// A store's state besides its segments' rows (see [`WindowStore::restore`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreMeta {
    pub segment_rows: usize,
    pub front_seq: u64,
    pub next_seq: u64,
    /// Index trims that still matter for held rows: (cut, next_seq at the trim).
    pub trims: Vec<(i64, u64)>,
}

/// The window store of one partition.
pub struct WindowStore {
    schema: SchemaRef,
    segments: VecDeque<Segment>,
    /// Sequence number of the first row of `segments[0]`.
    front_seq: u64,
    next_seq: u64,
    /// Per account, its held rows' sequence numbers in event-time order, stored as the low
    /// 32 bits: held rows are far fewer than 2^32, so [`WindowStore::full_seq`] recovers the
    /// full number from the store's front. Halves the index.
    accounts: Vec<Vec<u32>>,
    /// Per account, the event time of its newest held row (saves a column read per push).
    newest: Vec<i64>,
    /// log2 of rows per segment.
    shift: u32,
    /// Index trims by [`WindowStore::evict_before`] that still decide which held rows are
    /// indexed: (cut, next_seq then), seqs increasing and cuts decreasing. A held row with
    /// seq s is indexed iff its ts ≥ the cut of the first trim with next_seq > s.
    trims: Vec<(i64, u64)>,
}

impl Default for WindowStore {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowStore {
    pub fn new() -> Self {
        Self::with_segment_rows(SEGMENT_ROWS)
    }

    /// A store with `rows` rows per segment (rounded up to a power of two; tests use small ones).
    pub fn with_segment_rows(rows: usize) -> Self {
        let rows = rows.clamp(1, 1 << 30).next_power_of_two();
        let mut segments = VecDeque::new();
        segments.push_back(Segment::new_open(rows));
        WindowStore {
            schema: segment_schema(),
            segments,
            front_seq: 0,
            next_seq: 0,
            accounts: Vec::new(),
            newest: Vec::new(),
            shift: rows.trailing_zeros(),
            trims: Vec::new(),
        }
    }

    pub fn segment_rows(&self) -> usize {
        1 << self.shift
    }

    /// Full sequence number of a stored low-32-bit one.
    #[inline]
    fn full_seq(&self, low: u32) -> u64 {
        self.front_seq + u64::from(low.wrapping_sub(self.front_seq as u32))
    }

    #[inline]
    fn locate(&self, seq: u64) -> (&Segment, usize) {
        let rel = (seq - self.front_seq) as usize;
        (&self.segments[rel >> self.shift], rel & (self.segment_rows() - 1))
    }

    /// The row with this sequence number (it must still be held).
    #[inline]
    pub fn row(&self, seq: u64) -> Row {
        let (seg, i) = self.locate(seq);
        seg.row(i, seq)
    }

    #[inline]
    fn ts_of(&self, seq: u64) -> i64 {
        let (seg, i) = self.locate(seq);
        seg.ts(i)
    }

    pub fn tx_id(&self, seq: u64) -> &str {
        let (seg, i) = self.locate(seq);
        seg.tx_id(i)
    }

    /// Append a record to `account`'s window; returns its sequence number.
    pub fn push(&mut self, account: AccountId, r: NewRow<'_>) -> u64 {
        if (self.next_seq - self.front_seq) as usize == self.segments.len() << self.shift {
            if let Some(last) = self.segments.pop_back() {
                self.segments.push_back(last.seal(&self.schema));
            }
            self.segments.push_back(Segment::new_open(self.segment_rows()));
        }
        let Some(Segment::Open(o)) = self.segments.back_mut() else {
            unreachable!("the last segment is always open")
        };
        o.ts.append_value(r.ts_ms);
        o.amount.append_value(r.amount);
        o.counterparty.append_value(r.counterparty);
        o.flags.append_value(r.flags.0);
        o.tx_id.append_value(r.tx_id);
        o.account.append_value(account);
        o.max_ts = o.max_ts.max(r.ts_ms);
        o.min_ts = o.min_ts.min(r.ts_ms);
        let seq = self.next_seq;
        self.next_seq += 1;

        let idx = account as usize;
        if idx >= self.accounts.len() {
            self.accounts.resize_with(idx + 1, Vec::new);
            self.newest.resize(idx + 1, i64::MIN);
        }
        // Records are mostly released in time order; a late one is inserted in place.
        if self.newest[idx] > r.ts_ms {
            let list = &self.accounts[idx];
            let pos = list.partition_point(|&s| self.ts_of(self.full_seq(s)) <= r.ts_ms);
            self.accounts[idx].insert(pos, seq as u32);
        } else {
            self.accounts[idx].push(seq as u32);
            self.newest[idx] = r.ts_ms;
        }
        seq
    }

    fn index(&self, account: AccountId) -> &[u32] {
        self.accounts.get(account as usize).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Number of `account`'s held rows.
    pub fn len_of(&self, account: AccountId) -> usize {
        self.index(account).len()
    }

    /// `account`'s rows with `ts_ms >= from_ms`, oldest first.
    pub fn rows_since(&self, account: AccountId, from_ms: i64) -> impl DoubleEndedIterator<Item = Row> + '_ {
        let seqs = self.index(account);
        let start = seqs.partition_point(|&s| self.ts_of(self.full_seq(s)) < from_ms);
        seqs[start..].iter().map(move |&s| self.row(self.full_seq(s)))
    }

    /// All of `account`'s held rows, oldest first.
    pub fn rows(&self, account: AccountId) -> impl DoubleEndedIterator<Item = Row> + '_ {
        self.index(account).iter().map(move |&s| self.row(self.full_seq(s)))
    }

    /// Forget everything older than `cut_ms`: trims every account's index, then drops
    /// sealed segments whose newest row is older than the cut. Returns rows dropped.
    pub fn evict_before(&mut self, cut_ms: i64) -> usize {
        let droppable = self
            .segments
            .iter()
            .take_while(|s| matches!(s, Segment::Sealed(_)) && s.max_ts() < cut_ms)
            .count();
        if droppable == 0 {
            return 0;
        }
        let mut accounts = std::mem::take(&mut self.accounts);
        for list in accounts.iter_mut() {
            let n = list.partition_point(|&s| self.ts_of(self.full_seq(s)) < cut_ms);
            if n == list.len() {
                // `newest` stays: it only orders future pushes, and is still the newest seen.
                *list = Vec::new();
            } else if n > 0 {
                list.drain(..n);
                if list.capacity() > 4 * list.len() + 8 {
                    list.shrink_to_fit();
                }
            }
        }
        self.accounts = accounts;
        // Rows pushed before this trim are indexed only from the cut on; an earlier trim with
        // a cut no later than this one no longer decides anything.
        while self.trims.last().is_some_and(|&(c, _)| c <= cut_ms) {
            self.trims.pop();
        }
        self.trims.push((cut_ms, self.next_seq));
        let dropped = droppable << self.shift;
        self.segments.drain(..droppable);
        self.front_seq += dropped as u64;
        let front = self.front_seq;
        self.trims.retain(|&(_, s)| s > front);
        dropped
    }

    /// The oldest event time of any held row (indexed or not; `i64::MAX` when none is
    /// held): a name last seen before it is in no held row.
    pub fn min_held_ts(&self) -> i64 {
        self.segments.iter().map(Segment::min_ts).min().unwrap_or(i64::MAX)
    }

    /// Sequence number of the oldest held row: it moves when segments are dropped.
    pub fn front_seq(&self) -> u64 {
        self.front_seq
    }

    /// Forget an account whose id the dictionary freed (it has no held rows): its id may
    /// name another account from now on.
    pub fn forget(&mut self, account: AccountId) {
        let idx = account as usize;
        if let Some(list) = self.accounts.get_mut(idx) {
            debug_assert!(list.is_empty(), "account {account} still has indexed rows");
            *list = Vec::new();
            self.newest[idx] = i64::MIN;
        }
    }

    /// Rows currently held (including rows past the horizon not yet evicted).
    pub fn held_rows(&self) -> u64 {
        self.next_seq - self.front_seq
    }

    /// Heap bytes of columns and account indexes (not counting the interner).
    pub fn heap_bytes(&self) -> usize {
        let cols: usize = self.segments.iter().map(Segment::heap_bytes).sum();
        let idx: usize =
            self.accounts.iter().map(|v| v.capacity() * 4).sum::<usize>() + self.accounts.capacity() * (24 + 8);
        cols + idx
    }

    /// What [`WindowStore::restore`] needs besides the segments' rows.
    pub fn meta(&self) -> StoreMeta {
        StoreMeta {
            segment_rows: self.segment_rows(),
            front_seq: self.front_seq,
            next_seq: self.next_seq,
            trims: self.trims.clone(),
        }
    }

    /// Sealed segments, oldest first, with the sequence number of their first row.
    pub fn sealed(&self) -> impl Iterator<Item = (u64, &RecordBatch)> + '_ {
        let rows = self.segment_rows() as u64;
        self.segments.iter().enumerate().filter_map(move |(i, s)| match s {
            Segment::Sealed(s) => Some((self.front_seq + i as u64 * rows, &s.batch)),
            Segment::Open(_) => None,
        })
    }

    /// A copy of the open segment's rows as a batch.
    pub fn open_batch(&self) -> RecordBatch {
        let Some(Segment::Open(o)) = self.segments.back() else {
            unreachable!("the last segment is always open")
        };
        let columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(o.ts.finish_cloned()),
            Arc::new(o.amount.finish_cloned()),
            Arc::new(o.counterparty.finish_cloned()),
            Arc::new(o.flags.finish_cloned()),
            Arc::new(o.tx_id.finish_cloned()),
            Arc::new(o.account.finish_cloned()),
        ];
        RecordBatch::try_new(self.schema.clone(), columns)
            .unwrap_or_else(|e| panic!("window segment columns disagree: {e}"))
    }

    /// The store that [`WindowStore::meta`], [`WindowStore::sealed`] and
    /// [`WindowStore::open_batch`] described. The per-account index is rebuilt from the
    /// `account` column: exactly as it was (held rows indexed by the trims rule, in (ts, seq)
    /// order). Ids must be below `accounts` and `counterparties` (the dictionaries' sizes).
    pub fn restore(
        meta: StoreMeta,
        sealed: Vec<RecordBatch>,
        open: &RecordBatch,
        accounts: usize,
        counterparties: usize,
    ) -> Result<WindowStore, RestoreError> {
        let rows = meta.segment_rows;
        if !rows.is_power_of_two() || rows > 1 << 30 {
            return Err(invalid(format!("segment_rows {rows} is not a power of two up to 2^30")));
        }
        let held = meta
            .next_seq
            .checked_sub(meta.front_seq)
            .ok_or_else(|| invalid("next_seq is before front_seq"))?;
        let expect = sealed.len() as u64 * rows as u64 + open.num_rows() as u64;
        if held != expect || open.num_rows() > rows || held >= 1 << 32 {
            return Err(invalid(format!(
                "{held} held rows, but {} sealed segments of {rows} and {} open rows",
                sealed.len(),
                open.num_rows()
            )));
        }
        let ordered = meta.trims.windows(2).all(|w| w[0].1 < w[1].1 && w[0].0 > w[1].0);
        if !ordered || meta.trims.first().is_some_and(|t| t.1 <= meta.front_seq) {
            return Err(invalid("index trims out of order"));
        }
        let mut store = WindowStore::with_segment_rows(rows);
        store.segments.clear();
        for b in sealed {
            if b.num_rows() != rows {
                return Err(invalid(format!(
                    "a sealed segment has {} rows, not {rows}",
                    b.num_rows()
                )));
            }
            store.segments.push_back(Segment::sealed_from(b)?);
        }
        store.segments.push_back(Segment::open_from(open, rows)?);
        store.front_seq = meta.front_seq;
        store.next_seq = meta.next_seq;
        store.trims = meta.trims;
        for seg in &store.segments {
            for i in 0..seg.len() {
                let r = seg.row(i, 0);
                if seg.account(i) as usize >= accounts || r.counterparty as usize >= counterparties {
                    return Err(invalid("a row names an account outside the dictionary"));
                }
            }
        }
        store.rebuild_index();
        Ok(store)
    }

    fn rebuild_index(&mut self) {
        let mut lists: Vec<Vec<u32>> = Vec::new();
        let mut trim = 0;
        let mut seq = self.front_seq;
        for seg in &self.segments {
            for i in 0..seg.len() {
                while self.trims.get(trim).is_some_and(|&(_, s)| s <= seq) {
                    trim += 1;
                }
                let cut = self.trims.get(trim).map_or(i64::MIN, |&(c, _)| c);
                if seg.ts(i) >= cut {
                    let a = seg.account(i) as usize;
                    if a >= lists.len() {
                        lists.resize_with(a + 1, Vec::new);
                    }
                    lists[a].push(seq as u32);
                }
                seq += 1;
            }
        }
        // Seq order within equal ts is kept by the stable sort: the index's (ts, seq) order.
        for list in lists.iter_mut() {
            list.sort_by_key(|&s| self.ts_of(self.full_seq(s)));
        }
        self.newest = lists
            .iter()
            .map(|l| l.last().map_or(i64::MIN, |&s| self.ts_of(self.full_seq(s))))
            .collect();
        self.accounts = lists;
    }

    /// Sealed segments as Arrow record batches (for export and inspection).
    pub fn sealed_batches(&self) -> impl Iterator<Item = &RecordBatch> {
        self.segments.iter().filter_map(|s| match s {
            Segment::Sealed(s) => Some(&s.batch),
            Segment::Open(_) => None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(ts: i64, amount: i64) -> NewRow<'static> {
        NewRow {
            ts_ms: ts,
            amount,
            counterparty: 7,
            flags: Flags::new(Channel::Cash, Direction::Out, true, 0b101),
            tx_id: "tx",
        }
    }

    #[test]
    fn flags_roundtrip() {
        let f = Flags::new(Channel::Payroll, Direction::Out, true, 0xa5);
        assert_eq!(f.channel(), Channel::Payroll);
        assert_eq!(f.direction(), Direction::Out);
        assert!(f.cross_border() && !f.is_in());
        assert_eq!(f.memo_tags(), 0xa5);
    }

    #[test]
    fn per_account_order_with_late_records() {
        let mut w = WindowStore::new();
        w.push(1, row(100, 1));
        w.push(2, row(150, 9));
        w.push(1, row(300, 3));
        w.push(1, row(200, 2)); // late
        let ts: Vec<i64> = w.rows(1).map(|r| r.ts_ms).collect();
        assert_eq!(ts, vec![100, 200, 300]);
        let amounts: Vec<i64> = w.rows_since(1, 200).map(|r| r.amount).collect();
        assert_eq!(amounts, vec![2, 3]);
        assert_eq!(w.rows(2).count(), 1);
        assert_eq!(w.rows(9).count(), 0);
        let r = w.rows(1).next().unwrap();
        assert_eq!(r.flags.channel(), Channel::Cash);
        assert_eq!(w.tx_id(r.seq), "tx");
    }

    #[test]
    fn sequence_numbers_survive_crossing_2_pow_32() {
        let mut w = WindowStore::new();
        let start = (1u64 << 32) - 3;
        w.front_seq = start;
        w.next_seq = start;
        for i in 0..10 {
            w.push(4, row(i, i));
        }
        let seqs: Vec<u64> = w.rows(4).map(|r| r.seq).collect();
        assert_eq!(seqs, (start..start + 10).collect::<Vec<_>>());
        assert_eq!(
            w.rows_since(4, 5).map(|r| r.amount).collect::<Vec<_>>(),
            vec![5, 6, 7, 8, 9]
        );
    }

    #[test]
    fn segments_seal_and_evict() {
        let mut w = WindowStore::new();
        let n = SEGMENT_ROWS * 3 + 10;
        for i in 0..n {
            let tx = format!("t{i}");
            w.push(
                (i % 100) as u32,
                NewRow {
                    tx_id: &tx,
                    ..row(i as i64, i as i64)
                },
            );
        }
        assert_eq!(w.sealed_batches().count(), 3);
        assert_eq!(w.held_rows(), n as u64);
        // Rows are readable across sealed and open segments.
        assert_eq!(w.tx_id(5), "t5");
        assert_eq!(
            w.tx_id((SEGMENT_ROWS * 3 + 3) as u64),
            format!("t{}", SEGMENT_ROWS * 3 + 3)
        );
        assert_eq!(w.row(SEGMENT_ROWS as u64 + 1).amount, SEGMENT_ROWS as i64 + 1);
        // Cut inside the second segment: only the first can go.
        let dropped = w.evict_before(SEGMENT_ROWS as i64 + 5);
        assert_eq!(dropped, SEGMENT_ROWS);
        assert_eq!(w.held_rows(), (n - SEGMENT_ROWS) as u64);
        let first = w.rows(0).next().unwrap();
        assert!(first.ts_ms >= SEGMENT_ROWS as i64 + 5);
        assert_eq!(w.tx_id(first.seq), format!("t{}", first.ts_ms));
        let per_record = w.heap_bytes() as f64 / w.held_rows() as f64;
        assert!(per_record < 64.0, "{per_record} bytes per held record");
    }

    /// Encode, decode and restore, as a checkpoint does.
    fn roundtrip(w: &WindowStore, accounts: usize) -> WindowStore {
        let sealed = w
            .sealed()
            .map(|(_, b)| decode_batch(&encode_batch(b)).unwrap())
            .collect();
        let open = decode_batch(&encode_batch(&w.open_batch())).unwrap();
        WindowStore::restore(w.meta(), sealed, &open, accounts, 1_000).unwrap()
    }

    fn assert_same(a: &WindowStore, b: &WindowStore) {
        assert_eq!(a.meta(), b.meta());
        for acct in 0..a.accounts.len().max(b.accounts.len()) as u32 {
            assert_eq!(a.index(acct), b.index(acct), "index of account {acct}");
        }
        for seq in a.front_seq..a.next_seq {
            assert_eq!(a.row(seq), b.row(seq));
            assert_eq!(a.tx_id(seq), b.tx_id(seq));
        }
    }

    #[test]
    fn restore_rebuilds_the_index_exactly() {
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
        const ACCOUNTS: u32 = 40;
        const KEEP: i64 = 600;
        let mut original = WindowStore::with_segment_rows(64);
        let mut restored = WindowStore::with_segment_rows(64);
        let (mut now, mut late_below_cut, mut checks) = (0i64, 0, 0);
        for step in 0..6_000u32 {
            now += rng.gen_range(0..3);
            // Some records far later than the window keeps: below the last trim's cut.
            let ts = if rng.gen_bool(0.03) {
                now - rng.gen_range(0..2 * KEEP)
            } else {
                now
            };
            let account = rng.gen_range(0..ACCOUNTS);
            let tx = format!("tx{step}");
            let r = NewRow {
                tx_id: &tx,
                counterparty: rng.gen_range(0..1_000),
                ..row(ts, i64::from(step))
            };
            assert_eq!(original.push(account, r), restored.push(account, r));
            if original.trims.first().is_some_and(|&(cut, _)| ts < cut) {
                late_below_cut += 1;
            }
            original.evict_before(now - KEEP);
            restored.evict_before(now - KEEP);
            if step % 53 == 0 {
                let back = roundtrip(&original, ACCOUNTS as usize);
                assert_same(&original, &back);
                // Go on from the restored copy: it must stay identical from here on.
                restored = roundtrip(&restored, ACCOUNTS as usize);
                checks += 1;
            }
        }
        assert_same(&original, &restored);
        assert!(original.front_seq > 1_000 && checks > 100);
        assert!(late_below_cut > 20, "{late_below_cut} late rows under a cut");
    }

    #[test]
    fn bad_segment_bytes_are_errors() {
        let mut w = WindowStore::with_segment_rows(16);
        for i in 0..40 {
            w.push(i % 3, row(i as i64, i as i64));
        }
        let bytes = encode_batch(w.sealed().next().unwrap().1);
        assert!(decode_batch(&[]).is_err());
        assert!(decode_batch(b"not arrow at all").is_err());
        assert!(decode_batch(&bytes[..bytes.len() / 2]).is_err());
        for i in 0..bytes.len() {
            for flip in [0x01, 0x5a, 0xff] {
                let mut bad = bytes.clone();
                bad[i] ^= flip;
                let _ = decode_batch(&bad); // an error or some batch, never a panic or abort
            }
        }
        // A larger segment (compressed buffers), many random multi-byte corruptions.
        use rand::{Rng, SeedableRng};
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
        let mut big = WindowStore::with_segment_rows(512);
        for i in 0..600 {
            let tx = format!("TX20260101{i:09}");
            big.push(
                i % 17,
                NewRow {
                    tx_id: &tx,
                    ..row(1_700_000_000_000 + i as i64 * 997, i as i64 * 13)
                },
            );
        }
        let big_bytes = encode_batch(big.sealed().next().unwrap().1);
        assert_eq!(decode_batch(&big_bytes).unwrap().num_rows(), 512);
        for _ in 0..4_000 {
            let mut bad = big_bytes.clone();
            for _ in 0..rng.gen_range(1..5) {
                let i = rng.gen_range(0..bad.len());
                bad[i] = rng.gen();
            }
            if rng.gen_bool(0.1) {
                bad.truncate(rng.gen_range(0..bad.len()));
            }
            let _ = decode_batch(&bad);
        }
        // Shapes that do not fit the store are errors too.
        let good = decode_batch(&bytes).unwrap();
        let open = w.open_batch();
        assert!(WindowStore::restore(w.meta(), vec![good.clone(), good.clone()], &open, 3, 8).is_ok());
        assert!(WindowStore::restore(w.meta(), vec![good.clone(), good.clone()], &open, 2, 8).is_err());
        assert!(WindowStore::restore(w.meta(), vec![good.clone()], &open, 3, 8).is_err());
        let meta = StoreMeta {
            next_seq: 0,
            front_seq: 5,
            ..w.meta()
        };
        assert!(WindowStore::restore(meta, vec![], &open, 3, 8).is_err());
    }
}
