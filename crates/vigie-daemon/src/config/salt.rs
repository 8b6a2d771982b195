//! The account salt: the HMAC key of account pseudonyms. With no `alert.account_salt`
//! configured, one is generated once (32 random bytes, hex) into `DATA_DIR/account-salt`,
//! readable by the owner only, and reused at every start, so pseudonyms are stable and
//! nobody can recompute them from a handle (as `HMAC("", handle)` would allow).

use std::io::{Read, Write};
use std::path::Path;

use anyhow::Context;
use vigie_alert::AlertConfig;
use vigie_domain::Secret;

/// Name of the generated salt's file inside the data directory.
pub const ACCOUNT_SALT_FILE: &str = "account-salt";

/// Random bytes in a generated salt.
const SALT_BYTES: usize = 32;

/// Fills `alert.account_salt` when it is unset: from `DATA_DIR/account-salt`, generating
/// that file (mode 0600) the first time. A configured salt wins and no file is touched.
pub fn ensure_account_salt(alert: &mut AlertConfig, data_dir: &Path) -> anyhow::Result<()> {
    if !alert.account_salt.is_empty() {
        return Ok(());
    }
    std::fs::create_dir_all(data_dir)
        .with_context(|| format!("cannot create data directory {}", data_dir.display()))?;
    let path = data_dir.join(ACCOUNT_SALT_FILE);
    let salt = match read_salt(&path)? {
        Some(salt) => salt,
        None => create_salt(data_dir, &path)?,
    };
    alert.account_salt = Secret::new(salt);
    Ok(())
}

fn read_salt(path: &Path) -> anyhow::Result<Option<String>> {
    let mut text = String::new();
    match std::fs::File::open(path) {
        Ok(file) => {
            file.take(4096)
                .read_to_string(&mut text)
                .with_context(|| format!("cannot read {}", path.display()))?;
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(err).with_context(|| format!("cannot read {}", path.display()));
        }
    }
    let salt = text.trim();
    if salt.len() < 16 {
        anyhow::bail!(
            "{} is empty or too short to be a salt; delete it to generate a new one (account pseudonyms will change)",
            path.display()
        );
    }
    Ok(Some(salt.to_owned()))
}

/// Writes a new salt: a private temporary file (created 0600, never readable by others
/// even for a moment), fsync'd, then hard-linked into place, which fails rather than
/// replaces if another process created the salt meanwhile; that one is then used.
fn create_salt(data_dir: &Path, path: &Path) -> anyhow::Result<String> {
    let mut bytes = [0u8; SALT_BYTES];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut random| random.read_exact(&mut bytes))
        .context("cannot read random bytes from /dev/urandom for the account salt")?;
    let salt: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    let tmp = data_dir.join(format!("{ACCOUNT_SALT_FILE}.{}.tmp", std::process::id()));
    let written = (|| -> std::io::Result<()> {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options.open(&tmp)?;
        file.write_all(salt.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()?;
        match std::fs::hard_link(&tmp, path) {
            Ok(()) => Ok(()),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
            Err(err) => Err(err),
        }
    })();
    let _ = std::fs::remove_file(&tmp);
    written.with_context(|| format!("cannot write the account salt to {}", path.display()))?;
    if let Ok(dir) = std::fs::File::open(data_dir) {
        // The salt must survive a crash, or pseudonyms would change at the next start.
        let _ = dir.sync_all();
    }
    let salt = read_salt(path)?
        .with_context(|| format!("{} vanished after it was written", path.display()))?;
    tracing::info!(path = %path.display(), "generated the account pseudonym salt");
    Ok(salt)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vigie_alert::pseudonymize;

    /// Issue 12, row 6: an unset salt is generated once, private, and reused.
    #[test]
    fn issue_12_unset_salt_is_generated_private_and_stable() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let mut first = AlertConfig::default();
        assert!(first.account_salt.is_empty());
        ensure_account_salt(&mut first, &data).unwrap();
        let path = data.join(ACCOUNT_SALT_FILE);
        assert!(path.is_file());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600, "mode {mode:o}");
        }
        assert_eq!(first.account_salt.expose().len(), 2 * SALT_BYTES);
        let mut second = AlertConfig::default();
        ensure_account_salt(&mut second, &data).unwrap();
        let handle = "troll_1";
        let a = pseudonymize(first.account_salt.expose(), handle);
        assert_eq!(a, pseudonymize(second.account_salt.expose(), handle));
        assert_ne!(a, pseudonymize("", handle));
        // No temporary file is left behind.
        let names: Vec<_> = std::fs::read_dir(&data)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, [ACCOUNT_SALT_FILE]);
        // Another data directory gets another salt.
        let mut other = AlertConfig::default();
        ensure_account_salt(&mut other, &dir.path().join("other")).unwrap();
        assert_ne!(other.account_salt.expose(), first.account_salt.expose());
    }

    #[test]
    fn a_configured_salt_wins_and_a_broken_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let mut config = AlertConfig {
            account_salt: Secret::new("configured-salt"),
            ..AlertConfig::default()
        };
        ensure_account_salt(&mut config, dir.path()).unwrap();
        assert_eq!(config.account_salt.expose(), "configured-salt");
        assert!(!dir.path().join(ACCOUNT_SALT_FILE).exists());
        std::fs::write(dir.path().join(ACCOUNT_SALT_FILE), "\n").unwrap();
        let err = ensure_account_salt(&mut AlertConfig::default(), dir.path()).unwrap_err();
        assert!(err.to_string().contains("account-salt"), "{err}");
    }
}
