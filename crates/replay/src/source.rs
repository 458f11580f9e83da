//! Recorded streams as a sequence of decoded records or rejections, in file order.
//! JSON Lines (`.jsonl`, `.ndjson`, `.json`), CSV (`.csv`, header row naming the spec's
//! fields) and Parquet (`.parquet`, columns named like the spec's fields).

use std::borrow::Cow;
use std::fs::File;
use std::io::Read;
use std::path::Path;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    TimestampMicrosecondType, TimestampMillisecondType, TimestampNanosecondType, TimestampSecondType,
};
use arrow_array::{Array, RecordBatch};
use arrow_cast::display::{ArrayFormatter, FormatOptions};
use arrow_schema::{DataType, TimeUnit};
use fundwatch_record::{
    decode_json, format_rfc3339_ms, Decoded, Field, InputDecoder, MappedDecoder, RejectReason, SkipKind, TextFields,
    Transaction,
};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::ReplayError;

/// One item of a stream.
pub enum Item<'a> {
    Record(Transaction<'a>),
    Rejected {
        /// 1-based line (JSON Lines, CSV) or row (Parquet) number.
        position: u64,
        reason: RejectReason,
        /// The original bytes, as far as the format has them.
        raw: Cow<'a, [u8]>,
    },
}

/// One item of a stream read through the config's `[input]` ([`read_stream_with`]), with
/// where it came from (for dead letters the engine's event-time guards ask for).
pub enum Input<'a> {
    Record {
        tx: Transaction<'a>,
        /// 1-based line (JSON Lines, CSV) or row (Parquet) number.
        position: u64,
        /// The original line (JSON Lines); empty for CSV and Parquet rows.
        raw: &'a [u8],
    },
    Rejected {
        position: u64,
        reason: RejectReason,
        raw: Cow<'a, [u8]>,
    },
    /// A change event that is not a transaction (Debezium update, delete, tombstone, …).
    Skipped { position: u64, kind: SkipKind },
}

impl<'a> From<Input<'a>> for Option<Item<'a>> {
    fn from(i: Input<'a>) -> Option<Item<'a>> {
        match i {
            Input::Record { tx, .. } => Some(Item::Record(tx)),
            Input::Rejected { position, reason, raw } => Some(Item::Rejected { position, reason, raw }),
            Input::Skipped { .. } => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLines,
    Csv,
    Parquet,
}

impl Format {
    pub fn from_path(path: &Path) -> Result<Format, ReplayError> {
        let ext = path
            .extension()
            .and_then(|e| e.to_str())
            .unwrap_or("")
            .to_ascii_lowercase();
        match ext.as_str() {
            "jsonl" | "ndjson" | "json" | "" => Ok(Format::JsonLines),
            "csv" => Ok(Format::Csv),
            "parquet" | "pq" => Ok(Format::Parquet),
            other => Err(ReplayError::UnknownFormat(other.to_owned())),
        }
    }
}

/// Reads a stream file of the spec's records and hands every item to `f`; `progress` gets
/// bytes (JSON Lines, CSV) or rows (Parquet) consumed so far.
pub fn read_stream(path: &Path, mut f: impl FnMut(Item<'_>), progress: impl FnMut(u64)) -> Result<(), ReplayError> {
    read_stream_with(
        path,
        &InputDecoder::Fundwatch,
        |input| {
            if let Some(item) = input.into() {
                f(item)
            }
        },
        progress,
    )
}

/// Reads a stream file through `decoder` (the config's `[input]`), handing every item to `f`
/// with its position. The decoder is chosen here once: the spec's records keep their fast
/// path. A mapping applies to JSON Lines; CSV and Parquet are read by the spec's columns.
pub fn read_stream_with(
    path: &Path,
    decoder: &InputDecoder,
    mut f: impl FnMut(Input<'_>),
    mut progress: impl FnMut(u64),
) -> Result<(), ReplayError> {
    let open = || File::open(path).map_err(|e| ReplayError::Open(path.display().to_string(), e));
    let format = Format::from_path(path)?;
    if format != Format::JsonLines && !decoder.is_default() {
        return Err(ReplayError::MappingNeedsJson(path.display().to_string()));
    }
    match (format, decoder) {
        (Format::JsonLines, InputDecoder::Fundwatch) => read_lines(open()?, &SpecRecords, &mut f, &mut progress),
        (Format::JsonLines, InputDecoder::Mapped(m)) => read_lines(open()?, m.as_ref(), &mut f, &mut progress),
        (Format::Csv, _) => read_csv(open()?, &mut f, &mut progress),
        (Format::Parquet, _) => read_parquet(open()?, &mut f, &mut progress),
    }
}

/// How a line becomes an item; one implementation per decoder, so each reading loop is
/// compiled for its decoder alone.
trait LineDecoder {
    fn decode<'a>(&self, line: &'a [u8]) -> Decoded<'a>;
}

/// The spec's records: [`decode_json`].
struct SpecRecords;

impl LineDecoder for SpecRecords {
    #[inline]
    fn decode<'a>(&self, line: &'a [u8]) -> Decoded<'a> {
        match decode_json(line) {
            Ok(t) => Decoded::Record(t),
            Err(r) => Decoded::Rejected(r),
        }
    }
}

impl LineDecoder for MappedDecoder {
    #[inline]
    fn decode<'a>(&self, line: &'a [u8]) -> Decoded<'a> {
        MappedDecoder::decode(self, line)
    }
}

/// JSON Lines of the spec's records from any reader, in large chunks split on newlines (no
/// per-line allocation).
pub fn read_jsonl(
    r: impl Read,
    f: &mut impl FnMut(Item<'_>),
    progress: &mut impl FnMut(u64),
) -> Result<(), ReplayError> {
    let mut each = |input: Input<'_>| {
        if let Some(item) = input.into() {
            f(item)
        }
    };
    read_lines(r, &SpecRecords, &mut each, progress)
}

fn read_lines<D: LineDecoder>(
    mut r: impl Read,
    decoder: &D,
    f: &mut impl FnMut(Input<'_>),
    progress: &mut impl FnMut(u64),
) -> Result<(), ReplayError> {
    const CHUNK: usize = 1 << 22;
    let mut buf: Vec<u8> = Vec::with_capacity(CHUNK * 2);
    let mut line_no: u64 = 0;
    let mut consumed: u64 = 0;
    let mut eof = false;
    while !eof {
        let start = buf.len();
        buf.resize(start + CHUNK, 0);
        let n = read_full(&mut r, &mut buf[start..])?;
        buf.truncate(start + n);
        eof = n == 0;
        let mut pos = 0;
        while let Some(nl) = memchr::memchr(b'\n', &buf[pos..]) {
            line_no += 1;
            handle_line(&buf[pos..pos + nl], line_no, decoder, f);
            pos += nl + 1;
        }
        if eof && pos < buf.len() {
            line_no += 1;
            handle_line(&buf[pos..], line_no, decoder, f);
            pos = buf.len();
        }
        consumed += pos as u64;
        progress(consumed);
        buf.drain(..pos);
    }
    Ok(())
}

fn read_full(r: &mut impl Read, mut buf: &mut [u8]) -> Result<usize, ReplayError> {
    let mut total = 0;
    while !buf.is_empty() {
        match r.read(buf) {
            Ok(0) => break,
            Ok(n) => {
                total += n;
                buf = &mut buf[n..];
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(ReplayError::Read(e)),
        }
    }
    Ok(total)
}

#[inline]
fn handle_line<D: LineDecoder>(line: &[u8], line_no: u64, decoder: &D, f: &mut impl FnMut(Input<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return; // blank lines separate nothing and carry nothing
    }
    match decoder.decode(line) {
        Decoded::Record(tx) => f(Input::Record {
            tx,
            position: line_no,
            raw: line,
        }),
        Decoded::Rejected(reason) => f(Input::Rejected {
            position: line_no,
            reason,
            raw: Cow::Borrowed(line),
        }),
        Decoded::Skipped(kind) => f(Input::Skipped {
            position: line_no,
            kind,
        }),
    }
}

fn read_csv(file: File, f: &mut impl FnMut(Input<'_>), progress: &mut impl FnMut(u64)) -> Result<(), ReplayError> {
    let mut rdr = csv::ReaderBuilder::new()
        .has_headers(true)
        .flexible(true)
        .from_reader(std::io::BufReader::with_capacity(1 << 20, file));
    let headers = rdr.byte_headers().map_err(|e| ReplayError::Csv(e.to_string()))?.clone();
    let columns: Vec<Option<Field>> = headers
        .iter()
        .map(|h| std::str::from_utf8(h).ok().and_then(Field::from_name))
        .collect();
    if !columns.contains(&Some(Field::TxId)) {
        return Err(ReplayError::Csv(format!(
            "the header row names none of the spec's fields (tx_id, ts, account, …): {:?}",
            String::from_utf8_lossy(headers.as_slice())
        )));
    }
    let mut rec = csv::ByteRecord::new();
    let mut row: u64 = 0;
    loop {
        match rdr.read_byte_record(&mut rec) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                row += 1;
                f(Input::Rejected {
                    position: row + 1,
                    reason: RejectReason::MalformedRow(format!("CSV: {e}")),
                    raw: Cow::Owned(Vec::new()),
                });
                continue;
            }
        }
        row += 1;
        let raw = || Cow::Owned(rec.iter().collect::<Vec<_>>().join(&b","[..]));
        let mut fields = TextFields::default();
        let mut bad_utf8 = false;
        for (i, cell) in rec.iter().enumerate() {
            if let Some(Some(field)) = columns.get(i) {
                match std::str::from_utf8(cell) {
                    Ok(s) => fields.set(*field, Some(Cow::Borrowed(s))),
                    Err(_) => bad_utf8 = true,
                }
            }
        }
        let item = if bad_utf8 {
            Input::Rejected {
                position: row + 1,
                reason: RejectReason::InvalidUtf8,
                raw: raw(),
            }
        } else {
            match fields.into_transaction() {
                Ok(tx) => Input::Record {
                    tx,
                    position: row + 1,
                    raw: &[],
                },
                Err(reason) => Input::Rejected {
                    position: row + 1,
                    reason,
                    raw: raw(),
                },
            }
        };
        f(item);
        if row.is_multiple_of(65_536) {
            progress(rdr.position().byte());
        }
    }
    progress(rdr.position().byte());
    Ok(())
}

fn read_parquet(file: File, f: &mut impl FnMut(Input<'_>), progress: &mut impl FnMut(u64)) -> Result<(), ReplayError> {
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| ReplayError::Parquet(e.to_string()))?
        .with_batch_size(8192)
        .build()
        .map_err(|e| ReplayError::Parquet(e.to_string()))?;
    let mut row: u64 = 0;
    for batch in reader {
        let batch = batch.map_err(|e| ReplayError::Parquet(e.to_string()))?;
        parquet_batch(&batch, &mut row, f)?;
        progress(row);
    }
    Ok(())
}

/// Every cell becomes text and goes through the same validation as CSV; timestamps become
/// RFC 3339 in UTC so a zone-less Parquet timestamp is read as UTC, as Parquet defines it.
fn parquet_batch(batch: &RecordBatch, row: &mut u64, f: &mut impl FnMut(Input<'_>)) -> Result<(), ReplayError> {
    let options = FormatOptions::default();
    let schema = batch.schema();
    let mut cols: Vec<(Field, Column<'_>)> = Vec::new();
    for (i, fld) in schema.fields().iter().enumerate() {
        let Some(field) = Field::from_name(fld.name()) else {
            continue;
        };
        let array = batch.column(i);
        let col = match array.data_type() {
            DataType::Timestamp(unit, _) => Column::Ts(array.clone(), *unit),
            _ => Column::Text(
                ArrayFormatter::try_new(array.as_ref(), &options).map_err(|e| ReplayError::Parquet(e.to_string()))?,
                array.clone(),
            ),
        };
        cols.push((field, col));
    }
    for i in 0..batch.num_rows() {
        *row += 1;
        let mut fields = TextFields::default();
        for (field, col) in &cols {
            fields.set(*field, col.text(i));
        }
        match fields.into_transaction() {
            Ok(t) => f(Input::Record {
                tx: t.into_owned(),
                position: *row,
                raw: &[],
            }),
            Err(reason) => f(Input::Rejected {
                position: *row,
                reason,
                raw: Cow::Owned(format!("parquet row {row}").into_bytes()),
            }),
        }
    }
    Ok(())
}

enum Column<'a> {
    Text(ArrayFormatter<'a>, Arc<dyn Array>),
    Ts(Arc<dyn Array>, TimeUnit),
}

impl Column<'_> {
    fn text(&self, i: usize) -> Option<Cow<'static, str>> {
        match self {
            Column::Text(fmt, arr) => (!arr.is_null(i)).then(|| Cow::Owned(fmt.value(i).to_string())),
            Column::Ts(arr, unit) => {
                if arr.is_null(i) {
                    return None;
                }
                let ms = match unit {
                    TimeUnit::Second => arr.as_primitive::<TimestampSecondType>().value(i).saturating_mul(1000),
                    TimeUnit::Millisecond => arr.as_primitive::<TimestampMillisecondType>().value(i),
                    TimeUnit::Microsecond => arr.as_primitive::<TimestampMicrosecondType>().value(i).div_euclid(1000),
                    TimeUnit::Nanosecond => arr
                        .as_primitive::<TimestampNanosecondType>()
                        .value(i)
                        .div_euclid(1_000_000),
                };
                Some(Cow::Owned(format_rfc3339_ms(ms)))
            }
        }
    }
}
