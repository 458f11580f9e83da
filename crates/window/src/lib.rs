//! Event-time window state for one partition of the stream.
//!
//! Records are appended to Arrow columnar segments (an open segment of builders, sealed into a
//! `RecordBatch` every [`SEGMENT_ROWS`] rows) and addressed by a sequence number. Each account
//! keeps a time-ordered index of its sequence numbers, so rules read one account's history
//! without scanning the partition. Account numbers are dictionary-encoded by [`Interner`];
//! memos are reduced to tag bits before they get here. Eviction drops whole sealed segments
//! once all their rows are older than the longest rule horizon — O(1) per record, no per-row
//! frees. Per held record this is 22 bytes of columns + the tx_id bytes and offset + 4 bytes of index.

mod interner;

use std::collections::VecDeque;
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, StringBuilder, TimestampMillisecondBuilder, UInt16Builder, UInt32Builder};
use arrow_array::{Array, Int64Array, RecordBatch, StringArray, TimestampMillisecondArray, UInt16Array, UInt32Array};
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
    max_ts: i64,
}

struct SealedSegment {
    batch: RecordBatch,
    ts: TimestampMillisecondArray,
    amount: Int64Array,
    counterparty: UInt32Array,
    flags: UInt16Array,
    tx_id: StringArray,
    max_ts: i64,
}

enum Segment {
    Open(Box<OpenSegment>),
    Sealed(Box<SealedSegment>),
}

impl Segment {
    fn new_open() -> Self {
        Segment::Open(Box::new(OpenSegment {
            ts: TimestampMillisecondBuilder::with_capacity(SEGMENT_ROWS),
            amount: Int64Builder::with_capacity(SEGMENT_ROWS),
            counterparty: UInt32Builder::with_capacity(SEGMENT_ROWS),
            flags: UInt16Builder::with_capacity(SEGMENT_ROWS),
            tx_id: StringBuilder::with_capacity(SEGMENT_ROWS, SEGMENT_ROWS * 12),
            max_ts: i64::MIN,
        }))
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

    fn heap_bytes(&self) -> usize {
        match self {
            // Builders hold their full capacity whether or not it is used yet.
            Segment::Open(o) => {
                o.ts.capacity() * 8
                    + o.amount.capacity() * 8
                    + o.counterparty.capacity() * 4
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
        let columns: Vec<Arc<dyn Array>> = vec![
            Arc::new(ts.clone()),
            Arc::new(amount.clone()),
            Arc::new(counterparty.clone()),
            Arc::new(flags.clone()),
            Arc::new(tx_id.clone()),
        ];
        match RecordBatch::try_new(schema.clone(), columns) {
            Ok(batch) => Segment::Sealed(Box::new(SealedSegment {
                batch,
                ts,
                amount,
                counterparty,
                flags,
                tx_id,
                max_ts: o.max_ts,
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
    ]))
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
}

impl Default for WindowStore {
    fn default() -> Self {
        Self::new()
    }
}

impl WindowStore {
    pub fn new() -> Self {
        let mut segments = VecDeque::new();
        segments.push_back(Segment::new_open());
        WindowStore {
            schema: segment_schema(),
            segments,
            front_seq: 0,
            next_seq: 0,
            accounts: Vec::new(),
            newest: Vec::new(),
        }
    }

    /// Full sequence number of a stored low-32-bit one.
    #[inline]
    fn full_seq(&self, low: u32) -> u64 {
        self.front_seq + u64::from(low.wrapping_sub(self.front_seq as u32))
    }

    #[inline]
    fn locate(&self, seq: u64) -> (&Segment, usize) {
        let rel = (seq - self.front_seq) as usize;
        (&self.segments[rel / SEGMENT_ROWS], rel % SEGMENT_ROWS)
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
        if (self.next_seq - self.front_seq) as usize == self.segments.len() * SEGMENT_ROWS {
            if let Some(last) = self.segments.pop_back() {
                self.segments.push_back(last.seal(&self.schema));
            }
            self.segments.push_back(Segment::new_open());
        }
        let Some(Segment::Open(o)) = self.segments.back_mut() else {
            unreachable!("the last segment is always open")
        };
        o.ts.append_value(r.ts_ms);
        o.amount.append_value(r.amount);
        o.counterparty.append_value(r.counterparty);
        o.flags.append_value(r.flags.0);
        o.tx_id.append_value(r.tx_id);
        o.max_ts = o.max_ts.max(r.ts_ms);
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
        self.segments.drain(..droppable);
        self.front_seq += (droppable * SEGMENT_ROWS) as u64;
        droppable * SEGMENT_ROWS
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
}
