//! What a run's training code logs through MLflow, as the agent keeps it:
//! one JSON [`Record`] a line in the run's `metrics.jsonl` (appended by the
//! run's tracking endpoint, streamed by `moor metrics`), and the
//! [`Summary`] both ends make of those lines (params, tags, and each
//! metric's last value, range, count and a downsampled curve).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The most metric points one run keeps (every node of a job has its own
/// run, so its own budget); later ones are refused with MLflow's
/// `RESOURCE_LIMIT_EXCEEDED`.
pub const MAX_POINTS: u64 = 1_000_000;

/// The most params, tags, datasets and models one run keeps, together.
pub const MAX_ENTRIES: u64 = 100_000;

/// The run file holding a run's records.
pub const FILE: &str = "metrics.jsonl";

/// The run file holding its latest metric values (a JSON object), written
/// at most once a second while the run logs, and at its end.
pub const LATEST_FILE: &str = "metrics-latest.json";

/// One thing the training code logged. `run` is the MLflow run id: the
/// moor run's own id, or a run the code created in it (a nested run).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "t", rename_all = "snake_case")]
pub enum Record {
    /// A metric point.
    Metric {
        /// MLflow run id.
        run: String,
        /// Metric name.
        key: String,
        /// Its value (NaN and the infinities kept, as strings on the line).
        #[serde(with = "float")]
        value: f64,
        /// The step the code gave (0 when it gave none).
        step: i64,
        /// Milliseconds since the epoch, as the code gave it.
        timestamp: i64,
        /// The process's rank, when the run has several (each gets its own
        /// token, so the endpoint knows who logged).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rank: Option<u32>,
    },
    /// A parameter (set once).
    Param {
        /// MLflow run id.
        run: String,
        /// Name.
        key: String,
        /// Value.
        value: String,
    },
    /// A tag (the last one set wins).
    Tag {
        /// MLflow run id.
        run: String,
        /// Name.
        key: String,
        /// Value.
        value: String,
    },
    /// A run created or updated: its name, status and times.
    Run {
        /// MLflow run id.
        run: String,
        /// The run's name, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        name: Option<String>,
        /// `RUNNING`, `FINISHED`, `FAILED`, `KILLED`, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
        /// Milliseconds since the epoch, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<i64>,
        /// Milliseconds since the epoch, if set.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        end_time: Option<i64>,
        /// The experiment a created run belongs to.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        experiment_id: Option<String>,
    },
    /// An experiment the code created.
    Experiment {
        /// Its id.
        id: String,
        /// Its name.
        name: String,
    },
    /// A model the code logged (MLflow 3's logged models); its files are
    /// under the run's outputs.
    Model {
        /// MLflow run id of the run that logged it.
        run: String,
        /// The model's id.
        model_id: String,
        /// Its name.
        name: String,
        /// `LOGGED_MODEL_PENDING`, `LOGGED_MODEL_READY`, ...
        status: String,
    },
    /// A dataset the code said it used.
    Input {
        /// MLflow run id.
        run: String,
        /// The dataset's name.
        name: String,
        /// Its digest.
        digest: String,
        /// `mlflow.data.context` (train, eval, ...), if given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        context: Option<String>,
    },
}

impl Record {
    /// The MLflow run it belongs to, if any.
    pub fn run(&self) -> Option<&str> {
        match self {
            Record::Metric { run, .. }
            | Record::Param { run, .. }
            | Record::Tag { run, .. }
            | Record::Run { run, .. }
            | Record::Model { run, .. }
            | Record::Input { run, .. } => Some(run),
            Record::Experiment { .. } => None,
        }
    }
}

/// f64 on a JSON line: a number, or `"NaN"`, `"Infinity"`, `"-Infinity"`.
pub mod float {
    use serde::{Deserialize, Deserializer, Serializer};

    /// Writes a finite value as a number, the others as their names.
    pub fn serialize<S: Serializer>(value: &f64, s: S) -> Result<S::Ok, S::Error> {
        if value.is_finite() {
            s.serialize_f64(*value)
        } else if value.is_nan() {
            s.serialize_str("NaN")
        } else if *value > 0.0 {
            s.serialize_str("Infinity")
        } else {
            s.serialize_str("-Infinity")
        }
    }

    /// Reads a number or one of the names.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Either {
            Number(f64),
            Name(String),
        }
        match Either::deserialize(d)? {
            Either::Number(n) => Ok(n),
            Either::Name(name) => match name.as_str() {
                "NaN" | "nan" => Ok(f64::NAN),
                "Infinity" | "inf" => Ok(f64::INFINITY),
                "-Infinity" | "-inf" => Ok(f64::NEG_INFINITY),
                other => other
                    .parse()
                    .map_err(|_| serde::de::Error::custom(format!("not a number: {other:?}"))),
            },
        }
    }
}

/// A latest value in `metrics-latest.json` (NaN and the infinities as
/// names).
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Latest(#[serde(with = "float")] pub f64);

/// The same bits: NaN equals NaN, so a run's record compares as a whole.
impl PartialEq for Latest {
    fn eq(&self, other: &Self) -> bool {
        self.0.to_bits() == other.0.to_bits()
    }
}

impl Eq for Latest {}

/// One metric of a [`Summary`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricSummary {
    /// The last value logged (by step, then time).
    #[serde(with = "float")]
    pub last: f64,
    /// Its step.
    pub last_step: i64,
    /// The smallest value (NaN ignored).
    #[serde(with = "float")]
    pub min: f64,
    /// The largest value (NaN ignored).
    #[serde(with = "float")]
    pub max: f64,
    /// How many points.
    pub count: u64,
    /// The curve, downsampled: at most [`CURVE_POINTS`] (step, mean).
    pub curve: Curve,
}

/// The most points a [`Curve`] keeps.
pub const CURVE_POINTS: usize = 512;

/// A metric's points in order of arrival, downsampled to at most
/// [`CURVE_POINTS`] buckets of equal size (two neighbours merge when it
/// fills), so any number of points takes the same memory: a bucket keeps
/// its last step and its mean.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Curve {
    /// Points a bucket holds (a power of two).
    pub per_bucket: u64,
    /// (last step, mean value) of each bucket, the last one maybe partial.
    pub buckets: Vec<(i64, f64)>,
    #[serde(skip)]
    filling: u64,
}

impl Curve {
    /// Adds a point (a NaN counts but does not move the mean).
    pub fn push(&mut self, step: i64, value: f64) {
        if self.per_bucket == 0 {
            self.per_bucket = 1;
        }
        let value = if value.is_nan() { None } else { Some(value) };
        match self.buckets.last_mut() {
            Some(last) if self.filling < self.per_bucket => {
                last.0 = step;
                if let Some(v) = value {
                    let n = self.filling as f64;
                    last.1 = if last.1.is_nan() {
                        v
                    } else {
                        (last.1 * n + v) / (n + 1.0)
                    };
                }
                self.filling += 1;
            }
            _ => {
                self.buckets.push((step, value.unwrap_or(f64::NAN)));
                self.filling = 1;
            }
        }
        if self.buckets.len() > CURVE_POINTS {
            let merged = self
                .buckets
                .chunks(2)
                .map(|pair| match pair {
                    [a, b] => (b.0, mean_of(a.1, b.1)),
                    [a] => *a,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            self.buckets = merged;
            self.per_bucket *= 2;
            // The last bucket may hold fewer points than the others.
            self.filling = self.per_bucket;
        }
    }
}

fn mean_of(a: f64, b: f64) -> f64 {
    match (a.is_nan(), b.is_nan()) {
        (true, _) => b,
        (_, true) => a,
        _ => (a + b) / 2.0,
    }
}

/// What a run logged, folded from its records: bounded whatever their number.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Params by name.
    pub params: BTreeMap<String, String>,
    /// Tags by name (MLflow's own `mlflow.*` tags included).
    pub tags: BTreeMap<String, String>,
    /// Metrics by name.
    pub metrics: BTreeMap<String, MetricSummary>,
    /// The run's MLflow status (`FINISHED`, ...), if the code set one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// Models logged, by id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, String>,
    /// Datasets used, by name (their digest).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, String>,
}

impl Summary {
    /// Folds one record in (records of other MLflow runs are left out by
    /// the caller, or merged as it chooses).
    pub fn add(&mut self, record: &Record) {
        match record {
            Record::Metric {
                key, value, step, ..
            } => {
                let entry = self
                    .metrics
                    .entry(key.clone())
                    .or_insert_with(|| MetricSummary {
                        last: *value,
                        last_step: *step,
                        min: f64::NAN,
                        max: f64::NAN,
                        count: 0,
                        curve: Curve::default(),
                    });
                if *step >= entry.last_step {
                    entry.last = *value;
                    entry.last_step = *step;
                }
                if !value.is_nan() {
                    entry.min = if entry.min.is_nan() {
                        *value
                    } else {
                        entry.min.min(*value)
                    };
                    entry.max = if entry.max.is_nan() {
                        *value
                    } else {
                        entry.max.max(*value)
                    };
                }
                entry.count += 1;
                entry.curve.push(*step, *value);
            }
            Record::Param { key, value, .. } => {
                self.params.insert(key.clone(), value.clone());
            }
            Record::Tag { key, value, .. } => {
                self.tags.insert(key.clone(), value.clone());
            }
            Record::Run { status, .. } => {
                if let Some(status) = status {
                    self.status = Some(status.clone());
                }
            }
            Record::Model { model_id, name, .. } => {
                self.models.insert(model_id.clone(), name.clone());
            }
            Record::Input { name, digest, .. } => {
                self.inputs.insert(name.clone(), digest.clone());
            }
            Record::Experiment { .. } => {}
        }
    }

    /// Each metric's last value.
    pub fn latest(&self) -> BTreeMap<String, f64> {
        self.metrics
            .iter()
            .map(|(key, m)| (key.clone(), m.last))
            .collect()
    }
}

/// Parses one line of `metrics.jsonl`; `None` for a line that is not a
/// record (a line cut short by a crash, or one from a newer agent).
pub fn parse_line(line: &[u8]) -> Option<Record> {
    serde_json::from_slice(line).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn metric(key: &str, value: f64, step: i64) -> Record {
        Record::Metric {
            run: "r".into(),
            key: key.into(),
            value,
            step,
            timestamp: 1,
            rank: None,
        }
    }

    #[test]
    fn records_round_trip_with_nan_and_infinity() {
        for value in [0.5, f64::INFINITY, f64::NEG_INFINITY] {
            let line = serde_json::to_string(&metric("loss", value, 3)).unwrap();
            assert_eq!(parse_line(line.as_bytes()), Some(metric("loss", value, 3)));
        }
        let line = serde_json::to_string(&metric("loss", f64::NAN, 3)).unwrap();
        assert!(line.contains("\"NaN\""), "{line}");
        match parse_line(line.as_bytes()) {
            Some(Record::Metric { value, .. }) => assert!(value.is_nan()),
            other => panic!("{other:?}"),
        }
        assert_eq!(parse_line(b"{\"t\":\"metric\",\"run\":\"r\",\"ke"), None);
    }

    #[test]
    fn a_summary_keeps_last_min_max_and_a_bounded_curve() {
        let mut summary = Summary::default();
        for step in 0..100_000i64 {
            summary.add(&metric("loss", 1.0 / (step + 1) as f64, step));
        }
        summary.add(&metric("loss", f64::NAN, 100_000));
        summary.add(&Record::Param {
            run: "r".into(),
            key: "lr".into(),
            value: "0.1".into(),
        });
        let loss = &summary.metrics["loss"];
        assert_eq!(loss.count, 100_001);
        assert!(loss.last.is_nan());
        assert_eq!((loss.min, loss.max), (1.0 / 100_000.0, 1.0));
        assert!(loss.curve.buckets.len() <= CURVE_POINTS);
        assert!(loss.curve.buckets.len() > CURVE_POINTS / 2);
        // The curve falls as the points did, and ends at the last step.
        assert!(loss.curve.buckets[0].1 > loss.curve.buckets[10].1);
        assert_eq!(loss.curve.buckets.last().unwrap().0, 100_000);
        assert_eq!(summary.params["lr"], "0.1");
    }

    #[test]
    fn a_short_curve_keeps_every_point() {
        let mut curve = Curve::default();
        for step in 0..50 {
            curve.push(step, step as f64);
        }
        assert_eq!(curve.per_bucket, 1);
        assert_eq!(curve.buckets.len(), 50);
        assert_eq!(curve.buckets[49], (49, 49.0));
    }
}
