//! A recorded stream decoded once and held compactly in memory, so that many engine runs
//! (two configs, a sweep's points) read it without decoding it again.
//!
//! Every string a record carries except its `tx_id` repeats a lot (accounts, counterparties,
//! memos, industries, regions), so they are interned into one dictionary; a record is a
//! fixed-size row of numbers and dictionary ids (about 56 bytes) plus its `tx_id` in one
//! text arena. [`DecodedStream::for_each`] hands the engine the same [`Transaction`] values
//! the file's decoder produced, in file order.

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Instant;

use fundwatch_record::{AccountType, Channel, Direction, InputDecoder, Transaction};
use fundwatch_replay::{read_stream_with, Input, ReplayError};
use fundwatch_window::Interner;

/// One accepted record, by dictionary ids.
#[derive(Debug, Clone, Copy)]
struct Row {
    ts_ms: i64,
    amount: i64,
    tx_id_end: u32,
    account: u32,
    counterparty: u32,
    memo: u32,
    industry: u32,
    region: u32,
    currency: u32,
    direction: Direction,
    channel: Channel,
    account_type: AccountType,
    cross_border: bool,
    is_cny: bool,
}

/// The accepted records of a stream file, in file order, plus what was rejected.
pub struct DecodedStream {
    pub input: String,
    rows: Vec<Row>,
    tx_ids: String,
    strings: Interner,
    /// Records read (accepted + rejected).
    pub records_read: u64,
    pub rejected_by_reason: BTreeMap<String, u64>,
    /// Change events that are not transactions (`[input] format = "debezium"`), by kind.
    pub skipped_by_kind: BTreeMap<String, u64>,
    /// Seconds spent reading and decoding.
    pub decode_seconds: f64,
}

impl DecodedStream {
    /// Read and validate a JSON Lines, CSV or Parquet stream of the spec's records (the same
    /// decoder as `replay`).
    pub fn load(path: &Path) -> Result<DecodedStream, ReplayError> {
        DecodedStream::load_with(path, &InputDecoder::Fundwatch)
    }

    /// [`DecodedStream::load`] through a config's `[input]` decoder
    /// (`fundwatch_rules::InputParams::decoder`), as `replay` reads it.
    pub fn load_with(path: &Path, decoder: &InputDecoder) -> Result<DecodedStream, ReplayError> {
        let start = Instant::now();
        let mut s = DecodedStream::empty(&path.display().to_string());
        let mut overflow = false;
        read_stream_with(
            path,
            decoder,
            |item| {
                s.records_read += 1;
                match item {
                    Input::Record { tx, .. } => {
                        if !s.push(&tx) {
                            overflow = true;
                        }
                    }
                    Input::Rejected { reason, .. } => {
                        *s.rejected_by_reason.entry(reason.code().to_owned()).or_default() += 1;
                    }
                    Input::Skipped { kind, .. } => {
                        *s.skipped_by_kind.entry(kind.as_str().to_owned()).or_default() += 1;
                    }
                }
            },
            |_| {},
        )?;
        if overflow {
            return Err(ReplayError::Read(std::io::Error::other(
                "stream too large to hold in memory for a backtest (over 4 GiB of tx_ids); split it",
            )));
        }
        s.rows.shrink_to_fit();
        s.tx_ids.shrink_to_fit();
        s.decode_seconds = start.elapsed().as_secs_f64();
        Ok(s)
    }

    /// Build from records already in memory (tests, generated streams).
    pub fn from_records<'a>(input: &str, records: impl IntoIterator<Item = Transaction<'a>>) -> DecodedStream {
        let mut s = DecodedStream::empty(input);
        for tx in records {
            s.records_read += 1;
            s.push(&tx);
        }
        s
    }

    fn empty(input: &str) -> DecodedStream {
        DecodedStream {
            input: input.to_owned(),
            rows: Vec::new(),
            tx_ids: String::new(),
            strings: Interner::new(),
            records_read: 0,
            rejected_by_reason: BTreeMap::new(),
            skipped_by_kind: BTreeMap::new(),
            decode_seconds: 0.0,
        }
    }

    fn push(&mut self, tx: &Transaction<'_>) -> bool {
        self.tx_ids.push_str(&tx.tx_id);
        let Ok(tx_id_end) = u32::try_from(self.tx_ids.len()) else {
            return false;
        };
        let mut id = |v: &str| self.strings.intern(v);
        let row = Row {
            ts_ms: tx.ts_ms,
            amount: tx.amount,
            tx_id_end,
            account: id(&tx.account),
            counterparty: id(&tx.counterparty),
            memo: id(&tx.memo),
            industry: id(&tx.industry),
            region: id(&tx.region),
            currency: id(&tx.currency),
            direction: tx.direction,
            channel: tx.channel,
            account_type: tx.account_type,
            cross_border: tx.cross_border,
            is_cny: tx.is_cny,
        };
        self.rows.push(row);
        true
    }

    /// Accepted records.
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn rejected(&self) -> u64 {
        self.rejected_by_reason.values().sum()
    }

    /// Bytes held (rows, tx_id text, dictionary).
    pub fn heap_bytes(&self) -> usize {
        self.rows.capacity() * std::mem::size_of::<Row>() + self.tx_ids.capacity() + self.strings.heap_bytes()
    }

    /// Every accepted record, in file order.
    pub fn for_each(&self, mut f: impl FnMut(&Transaction<'_>)) {
        let mut start = 0usize;
        for r in &self.rows {
            let end = r.tx_id_end as usize;
            let s = |id: u32| Cow::Borrowed(self.strings.resolve(id));
            let tx = Transaction {
                tx_id: Cow::Borrowed(self.tx_ids.get(start..end).unwrap_or("")),
                ts_ms: r.ts_ms,
                account: s(r.account),
                counterparty: s(r.counterparty),
                direction: r.direction,
                amount: r.amount,
                is_cny: r.is_cny,
                currency: s(r.currency),
                channel: r.channel,
                memo: s(r.memo),
                account_type: r.account_type,
                industry: s(r.industry),
                region: s(r.region),
                cross_border: r.cross_border,
            };
            f(&tx);
            start = end;
        }
    }
}
