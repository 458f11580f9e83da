//! Users, roles, region scopes, passwords and session tokens.

use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::error::{ConsoleError, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Reviews: confirm, dismiss, needs_info.
    Analyst,
    /// Also re-opens decided items and manages users.
    Supervisor,
    /// Reads only.
    Readonly,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Analyst => "analyst",
            Role::Supervisor => "supervisor",
            Role::Readonly => "readonly",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "analyst" => Some(Role::Analyst),
            "supervisor" => Some(Role::Supervisor),
            "readonly" => Some(Role::Readonly),
            _ => None,
        }
    }

    pub fn can_review(self) -> bool {
        matches!(self, Role::Analyst | Role::Supervisor)
    }
}

/// A logged-in user as the pages and the store see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub role: Role,
    /// Region prefixes; the empty prefix (written `*`) is every region.
    pub prefixes: Vec<String>,
}

impl User {
    /// Does this user's scope cover `region`? An item without a region is covered only by
    /// the all-regions scope.
    pub fn covers(&self, region: &str) -> bool {
        self.prefixes
            .iter()
            .any(|p| p.is_empty() || (!region.is_empty() && region.starts_with(p.as_str())))
    }

    pub fn sees_all(&self) -> bool {
        self.prefixes.iter().any(String::is_empty)
    }
}

/// `3101,3102` or `*` → prefixes. Prefixes are ASCII letters and digits so they can go into
/// SQL comparisons as they are.
pub fn parse_regions(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for part in text.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        if part == "*" {
            out.push(String::new());
        } else if part.len() <= 32 && part.bytes().all(|b| b.is_ascii_alphanumeric()) {
            out.push(part.to_owned());
        } else {
            return Err(ConsoleError::InvalidUser(format!(
                "region prefix {part:?} must be letters and digits (or * for every region)"
            )));
        }
    }
    if out.is_empty() {
        return Err(ConsoleError::InvalidUser(
            "regions must name at least one prefix (or * for every region)".into(),
        ));
    }
    Ok(out)
}

pub fn format_regions(prefixes: &[String]) -> String {
    prefixes
        .iter()
        .map(|p| if p.is_empty() { "*" } else { p.as_str() })
        .collect::<Vec<_>>()
        .join(",")
}

/// argon2id PHC string (the crate's defaults: m=19 MiB, t=2, p=1, OWASP's minimum).
pub fn hash_password(password: &str) -> Result<String> {
    let salt = SaltString::generate(&mut rand::rngs::OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| ConsoleError::Password(e.to_string()))
}

pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// 32 random bytes from the OS, hex.
pub fn random_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// 16 random bytes, hex: review ids.
pub fn random_id() -> String {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    hex(&bytes)
}

/// What the sessions table keeps of a token: a stolen database does not log anyone in.
pub fn token_hash(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Comparison whose time does not depend on where the strings differ (CSRF tokens).
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_round_trip_and_wrong_password() {
        let phc = hash_password("correct horse").expect("hash");
        assert!(phc.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &phc));
        assert!(!verify_password("wrong", &phc));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn scope_by_prefix() {
        let u = User {
            name: "a".into(),
            role: Role::Analyst,
            prefixes: parse_regions("3101, 44").expect("regions"),
        };
        assert!(u.covers("310105"));
        assert!(u.covers("4403"));
        assert!(!u.covers("3201"));
        assert!(!u.covers(""));
        let all = User {
            prefixes: parse_regions("*").expect("regions"),
            ..u
        };
        assert!(all.covers("") && all.covers("9999"));
        assert!(parse_regions("31%").is_err());
        assert!(parse_regions("").is_err());
    }
}
