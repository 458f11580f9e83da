//! Records whose fields arrive as text (CSV cells, Parquet string/decimal columns rendered to
//! text): the same validation as JSON, so every input format rejects the same things the same way.

use std::borrow::Cow;

use crate::amount::parse_amount_text;
use crate::time::parse_rfc3339_ms;
use crate::{parse_account_type, parse_direction, truncate, Channel, RejectReason, Transaction};

/// The spec's fields, in a fixed order (CSV headers and Parquet columns map onto these).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    TxId,
    Ts,
    Account,
    Counterparty,
    Direction,
    Amount,
    Currency,
    Channel,
    Memo,
    AccountType,
    Industry,
    Region,
    CrossBorder,
}

impl Field {
    pub const ALL: [Field; 13] = [
        Field::TxId,
        Field::Ts,
        Field::Account,
        Field::Counterparty,
        Field::Direction,
        Field::Amount,
        Field::Currency,
        Field::Channel,
        Field::Memo,
        Field::AccountType,
        Field::Industry,
        Field::Region,
        Field::CrossBorder,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Field::TxId => "tx_id",
            Field::Ts => "ts",
            Field::Account => "account",
            Field::Counterparty => "counterparty",
            Field::Direction => "direction",
            Field::Amount => "amount",
            Field::Currency => "currency",
            Field::Channel => "channel",
            Field::Memo => "memo",
            Field::AccountType => "account_type",
            Field::Industry => "industry",
            Field::Region => "region",
            Field::CrossBorder => "cross_border",
        }
    }

    pub fn from_name(name: &str) -> Option<Field> {
        Field::ALL.into_iter().find(|f| f.name() == name.trim())
    }
}

/// One row's fields as text; `None` = column absent or null.
#[derive(Debug, Default, Clone)]
pub struct TextFields<'a> {
    values: [Option<Cow<'a, str>>; 13],
}

impl<'a> TextFields<'a> {
    pub fn set(&mut self, field: Field, value: Option<Cow<'a, str>>) {
        self.values[field as usize] = value;
    }

    fn take(&mut self, field: Field) -> Option<Cow<'a, str>> {
        self.values[field as usize].take()
    }

    fn required(&mut self, field: Field) -> Result<Cow<'a, str>, RejectReason> {
        self.take(field).ok_or(RejectReason::MissingField(field.name()))
    }

    fn non_empty(&mut self, field: Field) -> Result<Cow<'a, str>, RejectReason> {
        let v = self.required(field)?;
        if v.is_empty() {
            return Err(RejectReason::EmptyField(field.name()));
        }
        Ok(v)
    }

    /// Validate into a transaction. In text formats an empty optional cell means "absent";
    /// an empty required cell is absent too, except `counterparty`, where empty means cash.
    pub fn into_transaction(mut self) -> Result<Transaction<'a>, RejectReason> {
        let tx_id = self.non_empty(Field::TxId)?;
        let ts = self.non_empty(Field::Ts).map_err(missing_if_empty)?;
        let account = self.non_empty(Field::Account)?;
        let counterparty = self.required(Field::Counterparty)?;
        let direction = parse_direction(&self.non_empty(Field::Direction).map_err(missing_if_empty)?)?;
        let amount = parse_amount_text(&self.non_empty(Field::Amount).map_err(missing_if_empty)?)?;
        let ts_ms = parse_rfc3339_ms(&ts)?;
        let currency = self.take(Field::Currency).unwrap_or_default();
        let is_cny = currency.is_empty() || currency.as_ref() == "CNY";
        let account_type = match self.take(Field::AccountType) {
            Some(s) if !s.is_empty() => parse_account_type(&s)?,
            _ => Default::default(),
        };
        let cross_border = match self.take(Field::CrossBorder).as_deref() {
            None | Some("") | Some("false") | Some("0") | Some("FALSE") | Some("False") => false,
            Some("true") | Some("1") | Some("TRUE") | Some("True") => true,
            Some(other) => return Err(RejectReason::BadBool(truncate(other))),
        };
        let channel = Channel::of_record(self.take(Field::Channel).as_deref(), &counterparty);
        Ok(Transaction {
            tx_id,
            ts_ms,
            account,
            counterparty,
            direction,
            amount,
            is_cny,
            currency,
            channel,
            memo: self.take(Field::Memo).unwrap_or_default(),
            account_type,
            industry: self.take(Field::Industry).unwrap_or_default(),
            region: self.take(Field::Region).unwrap_or_default(),
            cross_border,
        })
    }
}

fn missing_if_empty(r: RejectReason) -> RejectReason {
    match r {
        RejectReason::EmptyField(f) => RejectReason::MissingField(f),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(pairs: &[(Field, &'static str)]) -> TextFields<'static> {
        let mut t = TextFields::default();
        for (f, v) in pairs {
            t.set(*f, Some(Cow::Borrowed(*v)));
        }
        t
    }

    #[test]
    fn text_row_validates_like_json() {
        let base = [
            (Field::TxId, "T1"),
            (Field::Ts, "2026-03-02T09:15:02+08:00"),
            (Field::Account, "A"),
            (Field::Counterparty, ""),
            (Field::Direction, "in"),
            (Field::Amount, "50000.00"),
            (Field::Channel, "cash"),
            (Field::CrossBorder, ""),
        ];
        let t = row(&base).into_transaction().unwrap();
        assert_eq!(t.amount, 5_000_000);
        assert_eq!(t.channel, Channel::Cash);
        let mut r = row(&base);
        r.set(Field::Amount, Some(Cow::Borrowed("1.999")));
        assert!(matches!(r.into_transaction(), Err(RejectReason::AmountDecimals { .. })));
        let mut r = row(&base);
        r.set(Field::Account, None);
        assert_eq!(r.into_transaction().unwrap_err(), RejectReason::MissingField("account"));
        let mut r = row(&base);
        r.set(Field::Amount, Some(Cow::Borrowed("")));
        assert_eq!(r.into_transaction().unwrap_err(), RejectReason::MissingField("amount"));
        let mut r = row(&base);
        r.set(Field::CrossBorder, Some(Cow::Borrowed("maybe")));
        assert!(matches!(r.into_transaction(), Err(RejectReason::BadBool(_))));
    }
}
