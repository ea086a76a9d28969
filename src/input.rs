//! Bounded reading of the files a user hands gateprobe: request bodies,
//! scenarios, simulator configs, saved reports. Each is read from a regular
//! file (or standard input when the user says `-`), up to a stated limit, so
//! that `/dev/zero`, a FIFO nobody writes to, or a runaway file is one clear
//! error (exit 2) instead of a hang or a machine out of memory.
use std::io::Read;
use std::path::Path;

use crate::exit::UsageError;

/// Most bytes of a request body file (`-d @FILE`): the body is held in memory
/// once and sent with every request.
pub const BODY_LIMIT: u64 = 16 * 1024 * 1024;
/// Most bytes of a scenario or a simulator config.
pub const CONFIG_LIMIT: u64 = 4 * 1024 * 1024;
/// Most bytes of a saved JSON report (histograms and series included).
pub const REPORT_LIMIT: u64 = 64 * 1024 * 1024;

/// Reads `path` (`-` = standard input) as bytes, refusing anything but a
/// regular file and anything over `limit` bytes. `what` names the input in
/// messages, e.g. `--body @FILE`.
pub fn read_bytes(path: &Path, what: &str, limit: u64) -> Result<Vec<u8>, UsageError> {
    let shown = crate::console::escape_controls(&path.display().to_string());
    let too_big = || {
        UsageError(format!(
            "{what} {shown}: larger than the {} limit",
            human_size(limit)
        ))
    };
    let mut bytes = Vec::new();
    if path.as_os_str() == "-" {
        std::io::stdin()
            .lock()
            .take(limit + 1)
            .read_to_end(&mut bytes)
            .map_err(|err| UsageError(format!("{what} -: cannot read standard input: {err}")))?;
        return if bytes.len() as u64 > limit {
            Err(too_big())
        } else {
            Ok(bytes)
        };
    }
    let file = open_regular(path).map_err(|why| UsageError(format!("{what} {shown}: {why}")))?;
    let length = file.metadata().map(|m| m.len()).unwrap_or(0);
    if length > limit {
        return Err(too_big());
    }
    file.take(limit + 1)
        .read_to_end(&mut bytes)
        .map_err(|err| UsageError(format!("{what} {shown}: cannot read: {err}")))?;
    if bytes.len() as u64 > limit {
        return Err(too_big());
    }
    Ok(bytes)
}

/// Like [`read_bytes`], for text that must be UTF-8.
pub fn read_text(path: &Path, what: &str, limit: u64) -> Result<String, UsageError> {
    let bytes = read_bytes(path, what, limit)?;
    String::from_utf8(bytes).map_err(|err| {
        UsageError(format!(
            "{what} {}: not UTF-8 text (byte {})",
            crate::console::escape_controls(&path.display().to_string()),
            err.utf8_error().valid_up_to()
        ))
    })
}

/// Opens a regular file without blocking: a FIFO opened for reading would
/// wait for a writer forever, so it is opened non-blocking and refused.
fn open_regular(path: &Path) -> Result<std::fs::File, String> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options
        .open(path)
        .map_err(|err| format!("cannot read the file: {err}"))?;
    let metadata = file
        .metadata()
        .map_err(|err| format!("cannot read the file: {err}"))?;
    if metadata.is_dir() {
        return Err("is a folder; expected a file".to_string());
    }
    if !metadata.is_file() {
        return Err(
            "is not a regular file (a device, FIFO or socket); give a file, or - for standard input"
                .to_string(),
        );
    }
    #[cfg(unix)]
    {
        // Back to blocking reads for the regular file.
        use std::os::unix::io::AsRawFd;
        let fd = file.as_raw_fd();
        // SAFETY: fcntl on a descriptor this function owns; no memory is shared.
        unsafe {
            let flags = libc::fcntl(fd, libc::F_GETFL);
            if flags >= 0 {
                libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK);
            }
        }
    }
    Ok(file)
}

/// `16 MiB`, `4 MiB`: limits as people read them.
pub fn human_size(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes % (1024 * 1024) == 0 {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

/// The PEM certificates in `path`, for `flag`: at least one, or exit 2
/// naming the flag and the file.
pub fn pem_certificates(
    flag: &str,
    path: &Path,
) -> Result<Vec<rustls::pki_types::CertificateDer<'static>>, UsageError> {
    use rustls::pki_types::pem::PemObject;
    let text = read_text(path, flag, CONFIG_LIMIT)?;
    let found: Vec<_> = rustls::pki_types::CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|why| {
            UsageError(format!(
                "{flag} {}: not PEM certificates: {why}",
                path.display()
            ))
        })?;
    if found.is_empty() {
        return Err(UsageError(format!(
            "{flag} {}: expected PEM certificates (-----BEGIN CERTIFICATE-----), found none",
            path.display()
        )));
    }
    Ok(found)
}

/// The one PEM private key in `path`, for `flag`. Its bytes are never
/// echoed: only the file is named.
pub fn pem_private_key(
    flag: &str,
    path: &Path,
) -> Result<rustls::pki_types::PrivateKeyDer<'static>, UsageError> {
    use rustls::pki_types::pem::PemObject;
    let text = read_text(path, flag, CONFIG_LIMIT)?;
    rustls::pki_types::PrivateKeyDer::from_pem_slice(text.as_bytes()).map_err(|_| {
        UsageError(format!(
            "{flag} {}: expected one PEM private key (PKCS#8, PKCS#1 or SEC1)",
            path.display()
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn devices_folders_and_big_files_are_refused() {
        let dev = read_bytes(Path::new("/dev/zero"), "--body @FILE", 1024).unwrap_err();
        assert!(dev.0.contains("not a regular file"), "{}", dev.0);
        let dir = read_bytes(Path::new("/"), "scenario", 1024).unwrap_err();
        assert!(dir.0.contains("folder"), "{}", dir.0);
        let file = std::env::temp_dir().join(format!("gateprobe-input-{}", std::process::id()));
        std::fs::write(&file, vec![b'x'; 2048]).unwrap();
        let big = read_bytes(&file, "scenario", 1024).unwrap_err();
        assert!(big.0.contains("1 KiB limit"), "{}", big.0);
        assert_eq!(read_bytes(&file, "scenario", 4096).unwrap().len(), 2048);
        let _ = std::fs::remove_file(file);
    }
}
