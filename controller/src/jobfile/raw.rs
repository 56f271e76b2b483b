//! The job file's YAML as serde reads it, before moor checks and resolves
//! it: each key in the shapes Azure ML accepts (a scalar or a mapping,
//! old and new forms); any other top-level key is kept to be warned about.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_yaml::Value;

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum Scalar {
    Bool(bool),
    Int(i64),
    Float(f64),
    Text(String),
}

impl Scalar {
    pub(super) fn text(&self) -> String {
        match self {
            Scalar::Bool(b) => b.to_string(),
            Scalar::Int(i) => i.to_string(),
            Scalar::Float(f) => f.to_string(),
            Scalar::Text(s) => s.clone(),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawCode {
    Path(String),
    Old { local_path: String },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawInput {
    Value(Scalar),
    Typed {
        #[serde(rename = "type", default)]
        kind: Option<String>,
        #[serde(default)]
        path: Option<String>,
        #[serde(default)]
        file: Option<String>,
        #[serde(default)]
        folder: Option<String>,
        #[serde(default)]
        value: Option<Scalar>,
        #[serde(default)]
        default: Option<Scalar>,
        #[serde(default)]
        mode: Option<String>,
    },
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub(super) enum RawEnvironment {
    Reference(String),
    Inline {
        #[serde(default)]
        image: Option<String>,
        #[serde(default)]
        conda_file: Option<String>,
        #[serde(default)]
        build: Option<RawBuild>,
    },
}

#[derive(Debug, Deserialize)]
pub(super) struct RawBuild {
    pub(super) path: String,
    #[serde(default)]
    pub(super) dockerfile_path: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawDistribution {
    #[serde(rename = "type")]
    pub(super) kind: String,
    #[serde(default)]
    pub(super) process_count_per_instance: Option<u32>,
    #[serde(default)]
    pub(super) worker_count: Option<u32>,
    #[serde(default)]
    pub(super) parameter_server_count: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RawResources {
    #[serde(default)]
    pub(super) instance_count: Option<u32>,
    #[serde(flatten)]
    pub(super) other: BTreeMap<String, Value>,
}

#[derive(Debug, Deserialize)]
pub(super) struct Raw {
    #[serde(rename = "$schema", default)]
    pub(super) schema: Option<String>,
    #[serde(rename = "type", default)]
    pub(super) kind: Option<String>,
    #[serde(default)]
    pub(super) command: Option<String>,
    #[serde(default)]
    pub(super) code: Option<RawCode>,
    #[serde(default)]
    pub(super) inputs: BTreeMap<String, RawInput>,
    #[serde(default)]
    pub(super) outputs: BTreeMap<String, Value>,
    #[serde(default)]
    pub(super) environment: Option<RawEnvironment>,
    #[serde(default)]
    pub(super) environment_variables: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub(super) display_name: Option<String>,
    #[serde(default)]
    pub(super) name: Option<String>,
    #[serde(default)]
    pub(super) experiment_name: Option<String>,
    #[serde(default)]
    pub(super) description: Option<String>,
    #[serde(default)]
    pub(super) tags: BTreeMap<String, Scalar>,
    #[serde(default)]
    pub(super) compute: Option<String>,
    #[serde(default)]
    pub(super) distribution: Option<RawDistribution>,
    #[serde(default)]
    pub(super) resources: Option<RawResources>,
    #[serde(flatten)]
    pub(super) unknown: BTreeMap<String, Value>,
}
