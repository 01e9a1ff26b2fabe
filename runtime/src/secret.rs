//! Secret values, redacted in this one place: a [`Secret`] (JWT secret, API keys, the metrics
//! token) shows `***` in `Debug` and has no `Display`, so `{secret}` in a format string does not
//! compile and `{secret:?}` prints nothing of it; a [`DatabaseUrl`] shows its password as `***`.
//! Structs holding them derive `Debug` and can be logged whole. Reads no env vars.

use std::ffi::OsStr;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;

/// A secret: `Debug` prints `***`. Read it with [`Secret::expose`] (or through `Deref`, which lends
/// the inner `str` / `[u8]`), where it is actually sent or checked.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret<T>(T);

impl<T> Secret<T> {
    pub fn new(value: T) -> Secret<T> {
        Secret(value)
    }

    /// The secret itself, for the one place that sends or checks it.
    pub fn expose(&self) -> &T {
        &self.0
    }
}

impl<T> fmt::Debug for Secret<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl<T: Deref> Deref for Secret<T> {
    type Target = T::Target;
    fn deref(&self) -> &T::Target {
        &self.0
    }
}

impl From<String> for Secret<String> {
    fn from(s: String) -> Secret<String> {
        Secret(s)
    }
}

impl From<&str> for Secret<String> {
    fn from(s: &str) -> Secret<String> {
        Secret(s.to_owned())
    }
}

impl FromStr for Secret<String> {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Secret<String>, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// A database address (`postgres://user:pw@host/db` or a SQLite file path): `Debug` and
/// `Display` show the password as `***`; [`DatabaseUrl::as_str`] gives the whole address to the
/// driver.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&redact_url(&self.0), f)
    }
}

impl fmt::Display for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&redact_url(&self.0))
    }
}

impl Deref for DatabaseUrl {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<OsStr> for DatabaseUrl {
    fn as_ref(&self) -> &OsStr {
        self.0.as_ref()
    }
}

impl From<String> for DatabaseUrl {
    fn from(s: String) -> DatabaseUrl {
        DatabaseUrl(s)
    }
}

impl From<&str> for DatabaseUrl {
    fn from(s: &str) -> DatabaseUrl {
        DatabaseUrl(s.to_owned())
    }
}

impl FromStr for DatabaseUrl {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<DatabaseUrl, Self::Err> {
        Ok(DatabaseUrl(s.to_owned()))
    }
}

/// `postgres://user:pw@host/db` → `postgres://user:***@host/db`.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_show_stars() {
        let s = Secret::from("sk-live-123");
        assert_eq!(format!("{s:?} {:?}", Some(s.clone())), "*** Some(***)");
        assert_eq!(&*s, "sk-live-123", "the value is there for whoever exposes it");
        let bytes = Secret::new(vec![1u8, 2, 3]);
        assert_eq!(format!("{bytes:?}"), "***");
        assert_eq!(&bytes[..], &[1, 2, 3]);
    }

    #[test]
    fn database_passwords_are_redacted() {
        assert_eq!(redact_url("postgres://u:secret@h/db"), "postgres://u:***@h/db");
        assert_eq!(redact_url("/tmp/x.db"), "/tmp/x.db");
        let url = DatabaseUrl::from("postgres://u:secret@h/db");
        assert_eq!(format!("{url} {url:?}"), "postgres://u:***@h/db \"postgres://u:***@h/db\"");
        assert_eq!(url.as_str(), "postgres://u:secret@h/db");
    }
}
