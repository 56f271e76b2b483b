//! From an Azure ML command job file (and `--set` overrides) to what moor
//! runs: the command line with `${{inputs.*}}`/`${{outputs.*}}` replaced,
//! local inputs packed as content-addressed snapshots, URL inputs left for
//! the hosts to download, the environment (an inline one made a moor
//! environment on first use), the variables, and where it runs
//! (`compute`: a target or a pool).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::cli::EnvCreateArgs;
use crate::context::Context;
use crate::error::{Error, Result};
use crate::jobfile::{self, Environment, Input, JobFile, Replacement};
use crate::snapshot::{self, Snapshot};
use crate::store::{Added, Env, Store};

/// A job file as moor will run it, before targets are resolved.
pub struct FileJob {
    /// The file, read and overridden.
    pub file: JobFile,
    /// `sh -c LINE`.
    pub command: Vec<String>,
    /// The code snapshot, when the file has `code`.
    pub snapshot: Option<Snapshot>,
    /// Local inputs, packed.
    pub inputs: BTreeMap<String, Snapshot>,
    /// URL inputs, downloaded on the hosts.
    pub url_inputs: BTreeMap<String, String>,
    /// The run's variables that hold the inputs (`MOOR_INPUT_NAME`), which
    /// the command refers to.
    pub variables: BTreeMap<String, String>,
}

/// Reads `path`, applies `set`, packs code and inputs (each at most
/// `max_bytes`; the code with private keys refused unless `keys` allows),
/// and makes the command line.
pub fn read(
    path: &Path,
    set: &[String],
    (max_bytes, keys): (u64, snapshot::Keys),
    index: &snapshot::SnapshotIndex,
) -> Result<FileJob> {
    if !path.is_file() {
        return Err(Error::usage(
            format!("no such job file: {}", path.display()),
            "give the path of an Azure ML command job file (YAML)",
        ));
    }
    let mut file = jobfile::read(path).map_err(|e| {
        Error::usage(
            format!("invalid job file: {}", e.message),
            "correct the job file at that line (the Azure ML command job schema)",
        )
    })?;
    for warning in &file.warnings {
        eprintln!("moor: warning: {warning}");
    }
    for item in set {
        apply_set(&mut file, item)?;
    }
    let snapshot = match &file.code {
        Some(code) => {
            let snap = snapshot::pack_source(code, max_bytes, index, keys)?;
            if let Some(warning) = snap.skipped_warning() {
                eprintln!("{warning}");
            }
            Some(snap)
        }
        None => None,
    };
    let mut inputs = BTreeMap::new();
    for (name, input) in &file.inputs {
        let packed = match input {
            Input::File(p) => snapshot::pack_file(p, max_bytes)?,
            Input::Folder(p) => snapshot::pack_all(p, max_bytes)?,
            Input::Literal(_) | Input::Url(_) => continue,
        };
        inputs.insert(name.clone(), packed);
    }
    let url_inputs = file
        .inputs
        .iter()
        .filter_map(|(name, input)| match input {
            Input::Url(url) => Some((name.clone(), url.clone())),
            _ => None,
        })
        .collect();
    let invalid = |e: String| {
        Error::usage(
            format!("invalid job file {}: {e}", path.display()),
            "name only inputs and outputs the file declares, where the shell expands them",
        )
    };
    let line = file
        .command_line(input_value, output_value)
        .map_err(invalid)?;
    let variables = file.input_variables(input_held).map_err(invalid)?;
    Ok(FileJob {
        command: vec!["sh".into(), "-c".into(), line],
        variables,
        file,
        snapshot,
        inputs,
        url_inputs,
    })
}

/// The environment a job file names, made a moor environment on first use
/// when it is inline (`job-<file stem>`, a new version when it changes).
pub fn environment(ctx: &Context, store: &Store, env: &Environment, file: &Path) -> Result<Env> {
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "job".into());
    let name: String = format!("job-{stem}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .take(64)
        .collect();
    let create = |args: EnvCreateArgs| -> Result<Env> {
        let env = match crate::envs::define(&args, ctx)? {
            Added::New(env) | Added::Unchanged(env) => env,
        };
        eprintln!("moor: the job's inline environment is {}", env.id());
        Ok(env)
    };
    let blank = |name: String| EnvCreateArgs {
        name,
        docker_base: None,
        dockerfile: None,
        docker_context: None,
        build_arg: Vec::new(),
        conda_file: None,
        pip_requirements: None,
        user_managed: false,
    };
    match env {
        Environment::Named { name, version } => {
            let key = match version {
                Some(v) => format!("{name}:{v}"),
                None => name.clone(),
            };
            crate::envs::find(store, &key)
        }
        Environment::Image { image, conda_file } => create(EnvCreateArgs {
            docker_base: Some(image.clone()),
            conda_file: conda_file.clone(),
            user_managed: conda_file.is_none(),
            ..blank(name)
        }),
        Environment::Build {
            context,
            dockerfile,
        } => create(EnvCreateArgs {
            docker_context: Some(context.clone()),
            dockerfile: dockerfile.as_ref().map(|d| context.join(d)),
            ..blank(name)
        }),
    }
}

/// What `${{inputs.NAME}}` becomes: the run's variable that holds it (a
/// file, folder or URL under `$MOOR_INPUTS_DIR`).
fn input_value(name: &str, input: &Input) -> Replacement {
    let var = jobfile::input_variable(name);
    match input {
        Input::Literal(_) => Replacement::var(&var),
        Input::File(_) | Input::Folder(_) | Input::Url(_) => {
            Replacement::under("MOOR_INPUTS_DIR", &var)
        }
    }
}

/// What the variable of input `name` holds: a literal as itself; a file,
/// folder or URL as its path under `$MOOR_INPUTS_DIR`.
fn input_held(name: &str, input: &Input) -> String {
    match input {
        Input::Literal(value) => value.clone(),
        Input::Folder(_) => name.to_owned(),
        Input::File(p) => {
            let base = p
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!("{name}/{base}")
        }
        Input::Url(url) => format!("{name}/{}", moor_proto::url_file_name(url)),
    }
}

/// What `${{outputs.NAME}}` becomes: its folder under `$MOOR_OUTPUT_DIR`.
fn output_value(name: &str) -> Replacement {
    Replacement::under_name("MOOR_OUTPUT_DIR", name)
}

/// The keys `--set` takes.
const SET_KEYS: &str = "inputs.NAME, inputs.NAME.path, environment_variables.NAME, tags.NAME, compute, display_name, experiment_name, description, resources.instance_count, distribution.process_count_per_instance";

/// Applies one `--set KEY=VALUE`.
fn apply_set(file: &mut JobFile, item: &str) -> Result<()> {
    let bad = |why: String| {
        Error::usage(
            why,
            format!("--set takes KEY=VALUE with KEY one of: {SET_KEYS}"),
        )
    };
    let (key, value) = item
        .split_once('=')
        .ok_or_else(|| bad(format!("--set {item:?} is not KEY=VALUE")))?;
    let number = |v: &str| -> Result<u32> {
        v.parse::<u32>()
            .ok()
            .filter(|n| *n >= 1)
            .ok_or_else(|| bad(format!("--set {key}: {v:?} is not a positive whole number")))
    };
    let value = value.to_owned();
    match key.trim() {
        "compute" => file.compute = Some(value.trim_start_matches("azureml:").to_owned()),
        "display_name" => file.display_name = Some(value),
        "experiment_name" => file.experiment_name = Some(value),
        "description" => file.description = Some(value),
        "resources.instance_count" => file.instance_count = number(&value)?,
        "distribution.process_count_per_instance" => {
            let p = number(&value)?;
            match &mut file.distribution {
                Some(jobfile::Distribution::Pytorch { processes_per_node })
                | Some(jobfile::Distribution::Mpi { processes_per_node }) => *processes_per_node = p,
                _ => return Err(bad("--set distribution.process_count_per_instance: the job has no pytorch or mpi distribution".into())),
            }
        }
        k => {
            if let Some(name) = k.strip_prefix("environment_variables.") {
                file.environment_variables.insert(name.to_owned(), value);
            } else if let Some(name) = k.strip_prefix("tags.") {
                file.tags.insert(name.to_owned(), value);
            } else if let Some(name) = k
                .strip_prefix("inputs.")
                .and_then(|n| n.strip_suffix(".path"))
            {
                let path = PathBuf::from(&value);
                let path = std::path::absolute(&path).unwrap_or(path);
                let lower = value.to_ascii_lowercase();
                let input = if lower.starts_with("https://") || lower.starts_with("http://") {
                    Input::Url(value.clone())
                } else if path.is_dir() {
                    Input::Folder(path)
                } else if path.is_file() {
                    Input::File(path)
                } else {
                    return Err(Error::usage(
                        format!("--set {k}: {value} is no file or folder here"),
                        "give the path of the data to upload",
                    ));
                };
                file.inputs.insert(name.to_owned(), input);
            } else if let Some(name) = k.strip_prefix("inputs.") {
                file.inputs.insert(name.to_owned(), Input::Literal(value));
            } else {
                return Err(bad(format!("--set {k}: moor cannot override this key")));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn job(text: &str) -> JobFile {
        jobfile::parse(Path::new("/jobs/job.yml"), text).unwrap()
    }

    #[test]
    fn set_overrides_literals_variables_and_compute() {
        let mut file = job("command: python train.py --lr ${{inputs.lr}}\ninputs:\n  lr: 0.1\ncompute: azureml:gpu\n");
        apply_set(&mut file, "inputs.lr=0.5").unwrap();
        apply_set(&mut file, "compute=azureml:cpu-pool").unwrap();
        apply_set(&mut file, "environment_variables.SEED=7").unwrap();
        apply_set(&mut file, "resources.instance_count=3").unwrap();
        assert_eq!(file.inputs["lr"], Input::Literal("0.5".into()));
        assert_eq!(file.compute.as_deref(), Some("cpu-pool"));
        assert_eq!(file.environment_variables["SEED"], "7");
        assert_eq!(file.instance_count, 3);
        assert!(apply_set(&mut file, "resources.instance_count=0").is_err());
        assert!(apply_set(&mut file, "queue_settings.job_tier=spot").is_err());
        assert!(apply_set(&mut file, "no-equals").is_err());
    }

    /// Runs the job's command line with `sh` as a host would: the
    /// variables of the run set, in a fresh folder; its stdout.
    fn run_line(file: &JobFile, dir: &Path) -> String {
        let line = file.command_line(input_value, output_value).unwrap();
        let out = std::process::Command::new("sh")
            .args(["-c", &line])
            .envs(file.input_variables(input_held).unwrap())
            .env("MOOR_OUTPUT_DIR", "/runs/a b")
            .env("MOOR_INPUTS_DIR", "/in puts")
            .current_dir(dir)
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    #[test]
    fn inputs_become_references_to_the_run_s_variables() {
        let file = job("command: python train.py --data ${{inputs.data}} --name ${{inputs.n}} --out ${{outputs.model}}\ninputs:\n  data:\n    type: uri_file\n    path: ./my data.csv\n  n: a b\noutputs:\n  model:\n    type: uri_folder\n");
        let line = file.command_line(input_value, output_value).unwrap();
        assert_eq!(
            line,
            "python train.py --data \"${MOOR_INPUTS_DIR}/${MOOR_INPUT_data}\" --name \"${MOOR_INPUT_n}\" --out \"${MOOR_OUTPUT_DIR}/model\""
        );
        let vars = file.input_variables(input_held).unwrap();
        assert_eq!(vars["MOOR_INPUT_data"], "data/my data.csv");
        assert_eq!(vars["MOOR_INPUT_n"], "a b");
        let dir = tempfile::tempdir().unwrap();
        let file = job("command: printf '%s|' ${{inputs.data}} '${{inputs.data}}'\ninputs:\n  data:\n    type: uri_file\n    path: ./my data.csv\n");
        assert_eq!(
            run_line(&file, dir.path()),
            "/in puts/data/my data.csv|/in puts/data/my data.csv|"
        );
        // Two names that make one variable, a quoted heredoc, arithmetic.
        let clash = job("command: echo ${{inputs.a-b}}\ninputs:\n  a-b: 1\n  a_b: 2\n");
        assert!(clash.input_variables(input_held).is_err());
        let quoted = job("command: |\n  cat <<'EOF'\n  ${{inputs.n}}\n  EOF\ninputs:\n  n: 1\n");
        assert!(quoted.command_line(input_value, output_value).is_err());
        let sum = job("command: echo $(( ${{inputs.n}} + 1 ))\ninputs:\n  n: 41\n");
        assert_eq!(run_line(&sum, dir.path()), "42\n");
        let hostile =
            job("command: echo $(( ${{inputs.n}} + 1 ))\ninputs:\n  n: 'a[$(touch p)]'\n");
        assert!(hostile.command_line(input_value, output_value).is_err());
    }

    #[test]
    fn the_shell_sees_each_value_exactly_wherever_it_stands() {
        let file = job(r#"command: >-
  printf '%s|' ${{inputs.n}} "${{inputs.n}}" '${{inputs.n}}' ${{outputs.m}} "${{outputs.m}}" '${{outputs.m}}'
inputs:
  n: it's "$HOME" `x` \ *
outputs:
  m:
    type: uri_folder
"#);
        let dir = tempfile::tempdir().unwrap();
        let n = r#"it's "$HOME" `x` \ *"#;
        let expected = format!("{n}|{n}|{n}|/runs/a b/m|/runs/a b/m|/runs/a b/m|");
        assert_eq!(run_line(&file, dir.path()), expected);
    }

    #[test]
    fn job_file_inputs_never_run_as_shell_code() {
        // Each shape the audit found, and more: the value is data wherever
        // it stands, and the value is exact where the shell expands it.
        let shapes = [
            "# don't\n  echo ${{inputs.x}}",
            "cat <<EOF\n  ${{inputs.x}}\n  EOF",
            "echo \"$(echo ${{inputs.x}})\"",
            "echo `echo ${{inputs.x}}`",
            "echo \"`echo \"${{inputs.x}}\"`\"",
            "echo '${{inputs.x}}' # it's ${{inputs.x}}",
            "x=${{inputs.x}}; echo \"$x\"",
            "echo \\'${{inputs.x}}\\'",
            "echo ${x:-${{inputs.x}}}",
            "eval echo ok; echo \"'\"${{inputs.x}}\"'\"",
        ];
        for value in [
            "$(touch pwned)",
            "`touch pwned`",
            "'; touch pwned; '",
            "\"; touch pwned; \"",
            "a\ntouch pwned",
        ] {
            for shape in shapes {
                let text = format!(
                    "command: |\n  {shape}\ninputs:\n  x: {}\n",
                    serde_json::to_string(value).unwrap()
                );
                let dir = tempfile::tempdir().unwrap();
                let out = run_line(&job(&text), dir.path());
                assert!(
                    !dir.path().join("pwned").exists(),
                    "{shape} with {value:?} ran: {out}"
                );
                assert!(
                    out.contains(value.lines().next().unwrap()),
                    "{shape} with {value:?}: {out}"
                );
            }
        }
    }
}
