//! Is a record's Kafka key its account? (`[input] keyed_by = "account"`, the check of
//! misrouted records in `service/partition.rs`.)

/// Whether `key` names `account`: the account's bytes, a JSON string of it, or a JSON object
/// with one field holding it (Debezium's key under `message.key.columns`, with or without
/// the JSON converter's `{"schema": …, "payload": …}` wrapper; a number counts by its
/// digits). No key, or an empty one, is not the account: such a topic is not keyed by it.
pub(crate) fn is_account(key: Option<&[u8]>, account: &str) -> bool {
    let Some(key) = key.filter(|k| !k.is_empty()) else {
        return false;
    };
    if key == account.as_bytes() {
        return true;
    }
    // Only JSON keys are parsed: a plain key that differs is simply another key.
    if !matches!(key.first(), Some(b'{' | b'"')) {
        return false;
    }
    let Ok(v) = serde_json::from_slice::<serde_json::Value>(key) else {
        return false;
    };
    let v = match v {
        serde_json::Value::Object(mut o) if o.contains_key("schema") && o.contains_key("payload") => {
            o.remove("payload").unwrap_or_default()
        }
        v => v,
    };
    let names = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.trim() == account,
        serde_json::Value::Number(n) => n.to_string() == account,
        _ => false,
    };
    match &v {
        serde_json::Value::Object(o) => o.len() == 1 && o.values().all(names),
        v => names(v),
    }
}

#[cfg(test)]
mod tests {
    use super::is_account;

    #[test]
    fn keys_that_are_and_are_not_the_account() {
        let acct = "6222020200001234567";
        assert!(is_account(Some(acct.as_bytes()), acct));
        assert!(is_account(Some(br#""6222020200001234567""#), acct));
        assert!(is_account(Some(br#"{"ACCT_NO":"6222020200001234567"}"#), acct));
        assert!(is_account(Some(br#"{"ACCT_NO":6222020200001234567}"#), acct));
        assert!(is_account(
            Some(br#"{"schema":{"type":"struct"},"payload":{"ACCT_NO":"6222020200001234567"}}"#),
            acct
        ));
        assert!(!is_account(None, acct));
        assert!(!is_account(Some(b""), acct));
        assert!(!is_account(Some(b"20260302000017"), acct));
        assert!(!is_account(Some(br#"{"TXN_SEQ_NO":"20260302000017"}"#), acct));
        assert!(!is_account(
            Some(br#"{"ACCT_NO":"6222020200001234567","TXN_SEQ_NO":"1"}"#),
            acct
        ));
        assert!(!is_account(Some(b"{not json"), acct));
    }
}
