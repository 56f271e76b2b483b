//! A run's MLflow state on the host. Every record is appended to the run's
//! `metrics.jsonl` before it is answered (one write a request, so a kill -9
//! cuts at most the last line, which readers skip); the API answers from
//! what is kept in memory: each MLflow run's params, tags and latest metric
//! values, within [`MAX_POINTS`] and [`MAX_ENTRIES`]. The latest values of
//! the moor run itself go to `metrics-latest.json` (for `moor runs`) at
//! most once a second, and at the end.

use std::collections::{BTreeMap, BTreeSet};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use moor_proto::tracking::{self, Record, MAX_ENTRIES, MAX_POINTS};

/// An answer other than success: HTTP status, MLflow's error code, message.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// MLflow's `error_code`.
    pub code: &'static str,
    /// What went wrong.
    pub message: String,
}

impl ApiError {
    /// 400 `INVALID_PARAMETER_VALUE`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self::new(400, "INVALID_PARAMETER_VALUE", message)
    }

    /// 404 `RESOURCE_DOES_NOT_EXIST`.
    pub fn missing(message: impl Into<String>) -> Self {
        Self::new(404, "RESOURCE_DOES_NOT_EXIST", message)
    }

    /// MLflow's answer for a run it does not know.
    pub fn no_run(id: &str) -> Self {
        Self::missing(format!("Run '{id}' not found"))
    }

    /// Any status and code.
    pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }
}

/// An MLflow run: the moor run, or one its code created.
#[derive(Debug, Clone, Default)]
pub struct MlRun {
    /// Its name.
    pub name: String,
    /// `RUNNING`, `FINISHED`, ...
    pub status: String,
    /// Milliseconds since the epoch.
    pub start_time: i64,
    /// Milliseconds since the epoch, once ended.
    pub end_time: Option<i64>,
    /// Its experiment.
    pub experiment_id: String,
    /// Params by name.
    pub params: BTreeMap<String, String>,
    /// Tags by name.
    pub tags: BTreeMap<String, String>,
    /// Each metric's latest (value, step, timestamp).
    pub latest: BTreeMap<String, (f64, i64, i64)>,
}

/// A logged model (MLflow 3).
#[derive(Debug, Clone)]
pub struct Model {
    /// The run that logged it.
    pub run: String,
    /// Its name.
    pub name: String,
    /// Its status.
    pub status: String,
    /// Its experiment.
    pub experiment_id: String,
    /// When it was created (ms).
    pub created: i64,
    /// Params by name.
    pub params: BTreeMap<String, String>,
}

/// The state of one moor run's tracking endpoint.
pub struct Store {
    dir: PathBuf,
    /// The run's outputs folder as its code sees it (`/moor/outputs` in a
    /// container): artifact URIs point there.
    outputs: PathBuf,
    file: File,
    log: Option<File>,
    /// The moor run's id: its MLflow run id too.
    pub main: String,
    /// MLflow runs by id.
    pub runs: BTreeMap<String, MlRun>,
    /// Experiments by id (`0` is `Default`).
    pub experiments: BTreeMap<String, String>,
    /// Logged models by id.
    pub models: BTreeMap<String, Model>,
    points: u64,
    entries: u64,
    noted: BTreeSet<String>,
    latest_written: Option<Instant>,
    dirty: bool,
}

impl Store {
    /// Opens (creates) the records of the run in `dir`, whose id is
    /// `run_id`, in experiment `experiment` (`Default` when none).
    pub fn open(
        dir: &Path,
        run_id: &str,
        experiment: Option<&str>,
        user: &str,
    ) -> io::Result<Self> {
        use std::os::unix::fs::OpenOptionsExt;
        let file = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o600)
            .open(dir.join(tracking::FILE))?;
        let log = fs::OpenOptions::new()
            .append(true)
            .open(dir.join(crate::runs::files::LOG))
            .ok();
        let mut experiments = BTreeMap::from([("0".to_owned(), "Default".to_owned())]);
        let experiment_id = match experiment {
            Some(name) if name != "Default" => {
                experiments.insert("1".into(), name.to_owned());
                "1"
            }
            _ => "0",
        };
        let main = MlRun {
            name: run_id.to_owned(),
            status: "RUNNING".into(),
            start_time: now_ms(),
            experiment_id: experiment_id.into(),
            tags: BTreeMap::from([("mlflow.user".to_owned(), user.to_owned())]),
            ..MlRun::default()
        };
        Ok(Self {
            dir: dir.to_owned(),
            outputs: dir.join(crate::runs::files::OUTPUTS),
            file,
            log,
            main: run_id.to_owned(),
            runs: BTreeMap::from([(run_id.to_owned(), main)]),
            experiments,
            models: BTreeMap::new(),
            points: 0,
            entries: 0,
            noted: BTreeSet::new(),
            latest_written: None,
            dirty: false,
        })
    }

    /// The file the records are appended to.
    pub fn records_path(&self) -> PathBuf {
        self.dir.join(tracking::FILE)
    }

    /// The experiment the moor run is in: (id, name).
    pub fn experiment_of_main(&self) -> (String, String) {
        let id = self.runs[&self.main].experiment_id.clone();
        let name = self.experiments.get(&id).cloned().unwrap_or_default();
        (id, name)
    }

    /// Points artifact URIs at `outputs`: where the run's code sees its
    /// outputs folder (a container's `/moor/outputs`).
    pub fn set_outputs(&mut self, outputs: &Path) {
        self.outputs = outputs.to_owned();
    }

    /// The `file://` URI of `what` (`RUN/artifacts`, `models/ID`) under the
    /// run's `outputs/mlflow/`: MLflow's client writes artifacts there.
    pub fn artifact_uri(&self, what: &str) -> String {
        let path = self.outputs.join("mlflow").join(what);
        format!("file://{}", percent_encode(&path.display().to_string()))
    }

    /// Appends `records` (checked against the limits first: all or none),
    /// then takes them in.
    pub fn append(&mut self, records: &[Record]) -> Result<(), ApiError> {
        let points = records
            .iter()
            .filter(|r| matches!(r, Record::Metric { .. }))
            .count() as u64;
        let entries = records.len() as u64 - points;
        if self.points + points > MAX_POINTS {
            self.note_once(
                "points",
                &format!("the run logged more than {MAX_POINTS} metric points: later ones are refused (RESOURCE_LIMIT_EXCEEDED)"),
            );
            return Err(ApiError::new(
                400,
                "RESOURCE_LIMIT_EXCEEDED",
                format!("moor keeps at most {MAX_POINTS} metric points a run"),
            ));
        }
        if self.entries + entries > MAX_ENTRIES {
            return Err(ApiError::new(
                400,
                "RESOURCE_LIMIT_EXCEEDED",
                format!("moor keeps at most {MAX_ENTRIES} params, tags, runs, datasets and models a run"),
            ));
        }
        let mut lines = Vec::with_capacity(records.len() * 96);
        for record in records {
            serde_json::to_writer(&mut lines, record).map_err(|e| {
                ApiError::new(500, "INTERNAL_ERROR", format!("record not written: {e}"))
            })?;
            lines.push(b'\n');
        }
        if let Err(e) = self.file.write_all(&lines) {
            self.note_once("write", &format!("metrics not kept: {e}"));
            // Not a status the client retries: a full disk fails the call now.
            return Err(ApiError::new(
                507,
                "IO_ERROR",
                format!("the host could not keep the record ({e}): free space on it"),
            ));
        }
        self.points += points;
        self.entries += entries;
        for record in records {
            self.take(record);
        }
        self.write_latest(false);
        Ok(())
    }

    fn take(&mut self, record: &Record) {
        match record {
            Record::Metric {
                run,
                key,
                value,
                step,
                timestamp,
                ..
            } => {
                if let Some(r) = self.runs.get_mut(run) {
                    let newer = r
                        .latest
                        .get(key)
                        .is_none_or(|(_, s, t)| (*step, *timestamp) >= (*s, *t));
                    if newer {
                        r.latest.insert(key.clone(), (*value, *step, *timestamp));
                    }
                }
                self.dirty |= *run == self.main;
            }
            Record::Param { run, key, value } => {
                if let Some(r) = self.runs.get_mut(run) {
                    r.params.insert(key.clone(), value.clone());
                }
            }
            Record::Tag { run, key, value } => {
                if let Some(r) = self.runs.get_mut(run) {
                    r.tags.insert(key.clone(), value.clone());
                }
            }
            Record::Run {
                run,
                name,
                status,
                start_time,
                end_time,
                experiment_id,
            } => {
                let r = self.runs.entry(run.clone()).or_default();
                if let Some(name) = name {
                    r.name = name.clone();
                }
                if let Some(status) = status {
                    r.status = status.clone();
                }
                if let Some(start) = start_time {
                    r.start_time = *start;
                }
                if end_time.is_some() {
                    r.end_time = *end_time;
                }
                if let Some(id) = experiment_id {
                    r.experiment_id = id.clone();
                }
            }
            Record::Experiment { id, name } => {
                self.experiments.insert(id.clone(), name.clone());
            }
            Record::Model {
                run,
                model_id,
                name,
                status,
            } => {
                let experiment_id = self
                    .runs
                    .get(run)
                    .map(|r| r.experiment_id.clone())
                    .unwrap_or_else(|| "0".into());
                let model = self
                    .models
                    .entry(model_id.clone())
                    .or_insert_with(|| Model {
                        run: run.clone(),
                        name: name.clone(),
                        status: status.clone(),
                        experiment_id,
                        created: now_ms(),
                        params: BTreeMap::new(),
                    });
                model.status = status.clone();
            }
            Record::Input { .. } => {}
        }
    }

    /// Writes the moor run's latest values if they changed, at most once a
    /// second unless `now`.
    pub fn write_latest(&mut self, now: bool) {
        let due = now
            || self
                .latest_written
                .is_none_or(|at| at.elapsed() >= Duration::from_secs(1));
        if !self.dirty || !due {
            return;
        }
        let latest: BTreeMap<&str, tracking::Latest> = self.runs[&self.main]
            .latest
            .iter()
            .map(|(key, (value, ..))| (key.as_str(), tracking::Latest(*value)))
            .collect();
        if crate::sys::write_json_atomic(&self.dir.join(tracking::LATEST_FILE), &latest).is_ok() {
            self.dirty = false;
            self.latest_written = Some(Instant::now());
        }
    }

    /// A line in the run's log, once per `topic`.
    pub fn note_once(&mut self, topic: &str, line: &str) {
        if self.noted.len() < 1000 && self.noted.insert(topic.to_owned()) {
            if let Some(log) = &mut self.log {
                let _ = log.write_all(format!("moor: MLflow: {line}\n").as_bytes());
            }
        }
    }
}

/// Milliseconds since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// A path made safe for a `file://` URI: bytes other than letters, digits
/// and `/._-~` as `%XX`.
fn percent_encode(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"/._-~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(run: &str, step: i64, value: f64) -> Record {
        Record::Metric {
            run: run.into(),
            key: "loss".into(),
            value,
            step,
            timestamp: step,
            rank: None,
        }
    }

    #[test]
    fn records_are_kept_on_disk_and_the_latest_values_written() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(crate::runs::files::LOG), "").unwrap();
        let mut store = Store::open(dir.path(), "run-1", Some("sweep"), "me").unwrap();
        assert_eq!(store.experiment_of_main(), ("1".into(), "sweep".into()));
        store
            .append(&[metric("run-1", 1, 0.5), metric("run-1", 0, 0.9)])
            .unwrap();
        assert_eq!(store.runs["run-1"].latest["loss"].0, 0.5, "by step");
        let lines = fs::read_to_string(dir.path().join(tracking::FILE)).unwrap();
        assert_eq!(lines.lines().count(), 2);
        let latest: serde_json::Value =
            crate::sys::read_json(&dir.path().join(tracking::LATEST_FILE)).unwrap();
        assert_eq!(latest["loss"], 0.5);
    }

    #[test]
    fn the_point_limit_refuses_a_whole_batch_and_says_so_in_the_log() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(crate::runs::files::LOG), "").unwrap();
        let mut store = Store::open(dir.path(), "r", None, "me").unwrap();
        store.points = MAX_POINTS - 1;
        let err = store
            .append(&[metric("r", 1, 1.0), metric("r", 2, 1.0)])
            .unwrap_err();
        assert_eq!(err.code, "RESOURCE_LIMIT_EXCEEDED");
        assert!(store.runs["r"].latest.is_empty());
        store.append(&[metric("r", 1, 1.0)]).unwrap();
        let log = fs::read_to_string(dir.path().join(crate::runs::files::LOG)).unwrap();
        assert!(log.contains("more than 1000000 metric points"), "{log}");
    }

    #[test]
    fn artifact_uris_are_under_the_outputs_and_escaped() {
        let dir = tempfile::tempdir().unwrap();
        let run = dir.path().join("a run");
        fs::create_dir(&run).unwrap();
        let store = Store::open(&run, "r", None, "me").unwrap();
        let uri = store.artifact_uri("r/artifacts");
        assert!(uri.starts_with("file:///"), "{uri}");
        assert!(
            uri.ends_with("/a%20run/outputs/mlflow/r/artifacts"),
            "{uri}"
        );
    }
}
