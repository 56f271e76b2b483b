//! A run's URL inputs (a job file's `path: https://...`): downloaded on the
//! host, once per URL, into `~/.moor/url-inputs/<sha256 of the URL>/`, with
//! the content's sha256 beside it; every run naming that URL gets a copy in
//! its `inputs/NAME/FILE` (a run may change its inputs; the cache stays as
//! downloaded). The download is the host's own `curl` (else Python's urllib),
//! so the host's CA store and its proxy settings apply, with a connect
//! timeout and a stall limit; a partial download never enters the cache.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::runs::files;
use crate::sys;

/// Where URL downloads are kept.
pub fn cache_root() -> PathBuf {
    sys::home().join(".moor/url-inputs")
}

/// Downloads `url` into `dest` with the host's tools; the reason on failure.
fn fetch(url: &str, dest: &Path) -> Result<(), String> {
    let curl = Command::new("curl")
        .args([
            "-fsSL",
            "--proto",
            "=https,http",
            "--connect-timeout",
            "30",
            "--speed-limit",
            "1",
            "--speed-time",
            "120",
            "-o",
        ])
        .arg(dest)
        .arg(url)
        .stdin(Stdio::null())
        .output();
    match curl {
        Ok(out) if out.status.success() => return Ok(()),
        Ok(out) => {
            return Err(String::from_utf8_lossy(&out.stderr).trim().to_owned());
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(format!("curl: {e}")),
    }
    let script = "import sys, shutil, urllib.request\n\
                  with urllib.request.urlopen(sys.argv[1], timeout=120) as r, open(sys.argv[2], 'wb') as f:\n    shutil.copyfileobj(r, f)\n";
    let out = Command::new("python3")
        .args(["-c", script, url])
        .arg(dest)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("neither curl nor python3 on the host to download it ({e})"))?;
    if out.status.success() {
        Ok(())
    } else {
        let text = String::from_utf8_lossy(&out.stderr);
        Err(text.lines().last().unwrap_or("python3 failed").to_owned())
    }
}

/// The cached file of `url`, downloaded now if the cache lacks it, and the
/// content's sha256.
pub fn cached(url: &str) -> Result<(PathBuf, String), String> {
    let key = moor_proto::sha256_hex(url.as_bytes());
    let dir = cache_root().join(&key);
    let data = dir.join("data");
    let sum_file = dir.join("sha256");
    if let (true, Ok(sum)) = (data.exists(), fs::read_to_string(&sum_file)) {
        return Ok((data, sum.trim().to_owned()));
    }
    let io = |e: io::Error| format!("{}: {e}", dir.display());
    sys::create_private_dir(&cache_root()).map_err(io)?;
    sys::create_private_dir(&dir).map_err(io)?;
    let tmp = dir.join(format!(".data.{}", sys::random_hex(4)));
    let fetched = fetch(url, &tmp);
    if let Err(why) = fetched {
        let _ = fs::remove_file(&tmp);
        return Err(format!("cannot download {url}: {why}"));
    }
    let sum = sys::sha256_file(&tmp).map_err(io)?;
    fs::rename(&tmp, &data).map_err(io)?;
    sys::write_atomic(&sum_file, sum.as_bytes()).map_err(io)?;
    Ok((data, sum))
}

/// Puts each URL input of the run in `dir` into `inputs/NAME/FILE`; returns
/// the log lines saying what came from where.
pub fn place(
    dir: &Path,
    urls: &std::collections::BTreeMap<String, String>,
) -> Result<Vec<String>, String> {
    let mut lines = Vec::new();
    for (name, url) in urls {
        if !crate::runs::inputs::valid_name(name) {
            return Err(format!("input {name:?}: not a plain name"));
        }
        let (data, sum) = cached(url)?;
        let folder = dir.join(files::INPUTS).join(name);
        let io = |e: io::Error| format!("{}: {e}", folder.display());
        sys::create_private_dir(&dir.join(files::INPUTS)).map_err(io)?;
        sys::create_private_dir(&folder).map_err(io)?;
        fs::copy(&data, folder.join(moor_proto::url_file_name(url))).map_err(io)?;
        lines.push(format!(
            "moor: input {name}: {url} (sha256 {})\n",
            &sum[..12]
        ));
    }
    Ok(lines)
}
