//! Whoever can change a key file decides who gets in: a key file, or the
//! development key's directory, that another user could replace is refused.

use std::path::Path;

use crate::AuthError;

/// Who may own a checked path besides group/others never writing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owner {
    /// This process's user: the development key, which the process made.
    Us,
    /// Anyone: keys an operator provides (a Kubernetes secret is root's, a
    /// bind mount the host user's); only their mode is checked.
    Anyone,
}

/// Refuses `path` (following symlinks) if group or others may write it, or
/// if `owner` is [`Owner::Us`] and another user owns it.
pub(crate) fn check(path: &Path, owner: Owner) -> Result<(), AuthError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt as _;
        let meta = std::fs::metadata(path).map_err(|source| AuthError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let me = rustix::process::geteuid().as_raw();
        if let Some(reason) = problem(meta.mode(), meta.uid(), me, owner) {
            return Err(AuthError::KeyFile {
                path: path.to_path_buf(),
                reason,
            });
        }
    }
    #[cfg(not(unix))]
    let _ = (path, owner);
    Ok(())
}

/// What is wrong with a path of `mode` owned by `uid` for a process of
/// user `me`, if anything.
#[cfg_attr(not(unix), allow(dead_code))]
fn problem(mode: u32, uid: u32, me: u32, owner: Owner) -> Option<String> {
    if owner == Owner::Us && uid != me {
        return Some(format!(
            "is owned by uid {uid}, not by this process's uid {me}: another user controls it; \
             chown it to uid {me}"
        ));
    }
    if mode & 0o022 != 0 {
        return Some(format!(
            "is writable by group or others (mode {:o}): whoever can change it can mint tokens; \
             run chmod go-w on it",
            mode & 0o777
        ));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_or_other_write_is_refused_whoever_owns_it() {
        for owner in [Owner::Us, Owner::Anyone] {
            assert_eq!(problem(0o700, 1, 1, owner), None);
            assert_eq!(problem(0o644, 1, 1, owner), None);
            for mode in [0o720, 0o702, 0o777, 0o664] {
                let reason = problem(mode, 1, 1, owner).unwrap_or_default();
                assert!(reason.contains("chmod go-w"), "{mode:o}: {reason}");
            }
        }
    }

    #[test]
    fn another_users_file_is_refused_where_it_must_be_ours() {
        let reason = problem(0o600, 1000, 65532, Owner::Us).unwrap_or_default();
        assert!(reason.contains("uid 1000"), "{reason}");
        assert_eq!(problem(0o444, 0, 65532, Owner::Anyone), None);
    }
}
