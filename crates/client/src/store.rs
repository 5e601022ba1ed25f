//! The tokens file: `tokens.json` in `$GATEHOUSE_CONFIG_DIR`, else `<config dir>/gatehouse`,
//! mapping each gate's origin to its token pair. Written atomically (temp file + rename in the
//! same directory), the file mode 0600 and a directory we create 0700.
//!
//! Every function takes the directory explicitly; only [`default_dir`] reads the environment.

use super::ClientError;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// Overrides the directory holding `tokens.json`.
pub const CONFIG_DIR_ENV: &str = "GATEHOUSE_CONFIG_DIR";
pub const FILE_NAME: &str = "tokens.json";

/// One gate's tokens; times are Unix seconds.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredTokens {
    pub access_token: String,
    pub refresh_token: String,
    pub access_expires_at: u64,
    pub refresh_expires_at: u64,
}

/// Never prints the tokens themselves.
impl std::fmt::Debug for StoredTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoredTokens")
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .finish_non_exhaustive()
    }
}

/// The whole file: origin → tokens.
pub type TokenFile = BTreeMap<String, StoredTokens>;

/// The directory from the environment and the platform's config dir.
pub fn default_dir() -> Result<PathBuf, ClientError> {
    choose_dir(std::env::var_os(CONFIG_DIR_ENV), dirs::config_dir())
}

/// `GATEHOUSE_CONFIG_DIR` when set and not empty, else `<config_dir>/gatehouse`.
pub fn choose_dir(
    env: Option<OsString>,
    config_dir: Option<PathBuf>,
) -> Result<PathBuf, ClientError> {
    match env.filter(|v| !v.is_empty()) {
        Some(dir) => Ok(PathBuf::from(dir)),
        None => config_dir
            .map(|d| d.join("gatehouse"))
            .ok_or(ClientError::NoConfigDir),
    }
}

pub fn file_path(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The whole file; empty when there is none yet.
pub fn load(dir: &Path) -> Result<TokenFile, ClientError> {
    let path = file_path(dir);
    let text = match fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == ErrorKind::NotFound => return Ok(TokenFile::new()),
        Err(source) => {
            return Err(ClientError::StoreIo {
                action: "read",
                path,
                source,
            })
        }
    };
    serde_json::from_str(&text).map_err(|source| ClientError::StoreCorrupt { path, source })
}

/// The tokens stored for `origin`, if any.
pub fn get(dir: &Path, origin: &str) -> Result<Option<StoredTokens>, ClientError> {
    Ok(load(dir)?.remove(origin))
}

/// Store `tokens` for `origin`, keeping the other gates' entries.
pub fn put(dir: &Path, origin: &str, tokens: StoredTokens) -> Result<(), ClientError> {
    let mut file = load(dir)?;
    file.insert(origin.to_string(), tokens);
    save(dir, &file)
}

/// Replace the whole file atomically.
pub fn save(dir: &Path, file: &TokenFile) -> Result<(), ClientError> {
    ensure_dir(dir)?;
    let path = file_path(dir);
    let json = serde_json::to_vec_pretty(file).map_err(|source| ClientError::StoreCorrupt {
        path: path.clone(),
        source,
    })?;
    let tmp = dir.join(format!(
        ".{FILE_NAME}.{}.{}.tmp",
        std::process::id(),
        &super::pkce::random_token()[..8]
    ));
    let io = |action: &'static str, path: &Path| {
        let path = path.to_path_buf();
        move |source| ClientError::StoreIo {
            action,
            path,
            source,
        }
    };
    let written = write_private(&tmp, &json).map_err(io("write", &tmp));
    let renamed = written.and_then(|()| fs::rename(&tmp, &path).map_err(io("replace", &path)));
    if renamed.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    renamed
}

/// Create `path` new with mode 0600, write and sync it.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    #[cfg(unix)]
    {
        // Exactly 0600 whatever the umask.
        use std::os::unix::fs::PermissionsExt;
        file.set_permissions(fs::Permissions::from_mode(0o600))?;
    }
    file.write_all(bytes)?;
    file.write_all(b"\n")?;
    file.sync_all()
}

/// Create the directory (mode 0700) when missing; an existing one is left as it is.
fn ensure_dir(dir: &Path) -> Result<(), ClientError> {
    if dir.is_dir() {
        return Ok(());
    }
    let fail = |source| ClientError::StoreIo {
        action: "create the directory",
        path: dir.to_path_buf(),
        source,
    };
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        fs::create_dir_all(parent).map_err(fail)?;
    }
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    match builder.create(dir) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::AlreadyExists && dir.is_dir() => Ok(()),
        Err(e) => Err(fail(e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(n: u64) -> StoredTokens {
        StoredTokens {
            access_token: format!("access-{n}"),
            refresh_token: format!("refresh-{n}"),
            access_expires_at: 1_000 + n,
            refresh_expires_at: 2_000 + n,
        }
    }

    #[test]
    fn token_file_round_trips_per_origin() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("nested").join("gatehouse");
        assert_eq!(get(&dir, "https://a.example").unwrap(), None);
        put(&dir, "https://a.example", pair(1)).unwrap();
        put(&dir, "http://127.0.0.1:4180", pair(2)).unwrap();
        put(&dir, "https://a.example", pair(3)).unwrap();
        assert_eq!(get(&dir, "https://a.example").unwrap(), Some(pair(3)));
        assert_eq!(get(&dir, "http://127.0.0.1:4180").unwrap(), Some(pair(2)));
        assert_eq!(load(&dir).unwrap().len(), 2);
        // No temp files are left behind.
        let names: Vec<_> = fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, vec![OsString::from(FILE_NAME)]);
    }

    #[cfg(unix)]
    #[test]
    fn token_file_is_0600_and_new_dir_0700() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("gatehouse");
        put(&dir, "https://a.example", pair(1)).unwrap();
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&file_path(&dir)), 0o600);
        assert_eq!(mode(&dir), 0o700);
        // A file that was loosened by hand comes back 0600 on the next write.
        fs::set_permissions(file_path(&dir), fs::Permissions::from_mode(0o644)).unwrap();
        put(&dir, "https://a.example", pair(2)).unwrap();
        assert_eq!(mode(&file_path(&dir)), 0o600);
    }

    #[test]
    fn corrupt_token_file_says_what_to_do() {
        let tmp = tempfile::tempdir().unwrap();
        fs::write(file_path(tmp.path()), "not json").unwrap();
        let e = load(tmp.path()).unwrap_err().to_string();
        assert!(
            e.contains("delete it and run `gatehouse login` again"),
            "{e}"
        );
    }

    #[test]
    fn env_dir_overrides_the_config_dir() {
        let home = Some(PathBuf::from("/home/u/.config"));
        assert_eq!(
            choose_dir(Some("/tmp/g".into()), home.clone()).unwrap(),
            PathBuf::from("/tmp/g")
        );
        assert_eq!(
            choose_dir(Some("".into()), home.clone()).unwrap(),
            PathBuf::from("/home/u/.config/gatehouse")
        );
        assert!(choose_dir(None, None).is_err());
    }

    #[test]
    fn debug_hides_the_tokens() {
        let shown = format!("{:?}", pair(1));
        assert!(!shown.contains("access-1") && !shown.contains("refresh-1"));
    }
}
