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
use fundwatch_record::{decode_json, format_rfc3339_ms, Field, RejectReason, TextFields, Transaction};
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

/// Reads a stream file and hands every item to `f`; `progress` gets bytes (JSON Lines, CSV)
/// or rows (Parquet) consumed so far.
pub fn read_stream(path: &Path, mut f: impl FnMut(Item<'_>), mut progress: impl FnMut(u64)) -> Result<(), ReplayError> {
    let open = || File::open(path).map_err(|e| ReplayError::Open(path.display().to_string(), e));
    match Format::from_path(path)? {
        Format::JsonLines => read_jsonl(open()?, &mut f, &mut progress),
        Format::Csv => read_csv(open()?, &mut f, &mut progress),
        Format::Parquet => read_parquet(open()?, &mut f, &mut progress),
    }
}

/// JSON Lines from any reader, in large chunks split on newlines (no per-line allocation).
pub fn read_jsonl(
    mut r: impl Read,
    f: &mut impl FnMut(Item<'_>),
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
            handle_line(&buf[pos..pos + nl], line_no, f);
            pos += nl + 1;
        }
        if eof && pos < buf.len() {
            line_no += 1;
            handle_line(&buf[pos..], line_no, f);
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

fn handle_line(line: &[u8], line_no: u64, f: &mut impl FnMut(Item<'_>)) {
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.iter().all(u8::is_ascii_whitespace) {
        return; // blank lines separate nothing and carry nothing
    }
    match decode_json(line) {
        Ok(t) => f(Item::Record(t)),
        Err(reason) => f(Item::Rejected {
            position: line_no,
            reason,
            raw: Cow::Borrowed(line),
        }),
    }
}

fn read_csv(file: File, f: &mut impl FnMut(Item<'_>), progress: &mut impl FnMut(u64)) -> Result<(), ReplayError> {
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
                f(Item::Rejected {
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
            Item::Rejected {
                position: row + 1,
                reason: RejectReason::InvalidUtf8,
                raw: raw(),
            }
        } else {
            match fields.into_transaction() {
                Ok(t) => Item::Record(t),
                Err(reason) => Item::Rejected {
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

fn read_parquet(file: File, f: &mut impl FnMut(Item<'_>), progress: &mut impl FnMut(u64)) -> Result<(), ReplayError> {
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
fn parquet_batch(batch: &RecordBatch, row: &mut u64, f: &mut impl FnMut(Item<'_>)) -> Result<(), ReplayError> {
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
            Ok(t) => f(Item::Record(t.into_owned())),
            Err(reason) => f(Item::Rejected {
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
