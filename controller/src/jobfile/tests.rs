use super::*;

const F: &str = "/jobs/job.yml";

/// Azure ML's own scikit-learn example, as its docs print it.
const SKLEARN: &str = r#"$schema: https://azuremlschemas.azureedge.net/latest/commandJob.schema.json
code: src
command: >-
  python main.py
  --iris-csv ${{inputs.iris_csv}}
  --C ${{inputs.C}}
  --kernel ${{inputs.kernel}}
  --coef0 ${{inputs.coef0}}
  --model-dir ${{outputs.model}}
inputs:
  iris_csv:
    type: uri_file
    path: data/iris.csv
  C: 0.8
  kernel: "rbf and more"
  coef0: 0.1
outputs:
  model:
    type: uri_folder
environment: azureml:AzureML-sklearn-1.0-ubuntu20.04-py38-cpu@latest
environment_variables:
  HELLO: world
  COUNT: 3
compute: azureml:cpu-cluster
display_name: sklearn-iris-example
experiment_name: sklearn-iris-example
description: Train a scikit-learn SVM on the Iris dataset.
tags:
  team: ml
queue_settings:
  job_tier: standard
"#;

#[test]
fn azure_mls_sklearn_example_reads_as_written() {
    let job = parse(Path::new(F), SKLEARN).unwrap();
    assert_eq!(job.code.as_deref(), Some(Path::new("/jobs/src")));
    assert_eq!(
        job.inputs["iris_csv"],
        Input::File(PathBuf::from("/jobs/data/iris.csv"))
    );
    assert_eq!(job.inputs["C"], Input::Literal("0.8".into()));
    assert_eq!(
        job.environment,
        Some(Environment::Named {
            name: "AzureML-sklearn-1.0-ubuntu20.04-py38-cpu".into(),
            version: None
        })
    );
    assert_eq!(job.compute.as_deref(), Some("cpu-cluster"));
    assert_eq!(job.environment_variables["COUNT"], "3");
    assert_eq!(job.outputs, ["model"]);
    assert_eq!(job.instance_count, 1);
    assert_eq!(job.warnings.len(), 1, "{:?}", job.warnings);
    assert!(
        job.warnings[0].contains("/jobs/job.yml:30: `queue_settings`"),
        "{:?}",
        job.warnings
    );
    let line = job
        .command_line(
            |name, input| match input {
                Input::File(_) => {
                    super::Replacement::under("MOOR_INPUTS_DIR", &super::input_variable(name))
                }
                Input::Literal(_) => super::Replacement::var(&super::input_variable(name)),
                other => panic!("{other:?}"),
            },
            |name| super::Replacement::under_name("MOOR_OUTPUT_DIR", name),
        )
        .unwrap();
    assert_eq!(
        line,
        "python main.py --iris-csv \"${MOOR_INPUTS_DIR}/${MOOR_INPUT_iris_csv}\" --C \"${MOOR_INPUT_C}\" --kernel \"${MOOR_INPUT_kernel}\" --coef0 \"${MOOR_INPUT_coef0}\" --model-dir \"${MOOR_OUTPUT_DIR}/model\""
    );
}

#[test]
fn old_forms_versions_inline_environments_and_distribution() {
    let text = "code:\n  local_path: ../src\ncommand: |\n  echo $HELLO\n  python train.py\ninputs:\n  data:\n    folder: ./data\n  web:\n    type: uri_file\n    path: https://example.com/d.csv\nenvironment: azureml:torch:3\ndistribution:\n  type: pytorch\n  process_count_per_instance: 2\nresources:\n  instance_count: 2\n  instance_type: Standard_NC6\n";
    let job = parse(Path::new(F), text).unwrap();
    assert_eq!(job.code.as_deref(), Some(Path::new("/jobs/../src")));
    assert_eq!(job.command, "echo $HELLO\npython train.py");
    assert_eq!(
        job.inputs["data"],
        Input::Folder(PathBuf::from("/jobs/./data"))
    );
    assert_eq!(
        job.inputs["web"],
        Input::Url("https://example.com/d.csv".into())
    );
    assert_eq!(
        job.environment,
        Some(Environment::Named {
            name: "torch".into(),
            version: Some(3)
        })
    );
    assert_eq!(
        job.distribution,
        Some(Distribution::Pytorch {
            processes_per_node: 2
        })
    );
    assert_eq!(job.instance_count, 2);
    assert!(
        job.warnings[0].contains("resources.instance_type"),
        "{:?}",
        job.warnings
    );
    let inline = "command: python x.py\nenvironment:\n  image: docker.io/library/python:3.11\n  conda_file: env.yml\n";
    assert_eq!(
        parse(Path::new(F), inline).unwrap().environment,
        Some(Environment::Image {
            image: "library/python:3.11".into(),
            conda_file: Some(PathBuf::from("/jobs/env.yml"))
        })
    );
}

#[test]
fn what_moor_cannot_read_is_an_error_with_its_line_and_what_to_do() {
    let cases = [
        (
            "command: x\ninputs:\n  d:\n    type: uri_folder\n    path: azureml:mydata:1\n",
            "job.yml:3: inputs.d: azureml:mydata:1 is Azure storage",
        ),
        (
            "command: x\ninputs:\n  d:\n    path: wasbs://c@a.blob.core.windows.net/p\n",
            "download the data and give a local path",
        ),
        ("command: [1, 2]\n", "job.yml:1:"),
        ("command: x\ninputs: [\n", "job.yml:"),
        (
            "type: sweep\ncommand: x\n",
            "job.yml:1: type: sweep jobs are not supported",
        ),
        (
            "command: x\ndistribution:\n  type: ray\n",
            "job.yml:2: distribution type \"ray\"",
        ),
        (
            "command: x\noutputs:\n  m:\n    type: mlflow_model\n",
            "job.yml:3: outputs.m: type mlflow_model",
        ),
        ("code: src\n", "no command"),
    ];
    for (text, want) in cases {
        let error = parse(Path::new(F), text).unwrap_err().message;
        assert!(error.contains(want), "{text:?}: {error}");
    }
    let job = parse(Path::new(F), "command: echo ${{inputs.nope}}\n").unwrap();
    let error = job
        .command_line(
            |_, _| super::Replacement::var("X"),
            |_| super::Replacement::var("X"),
        )
        .unwrap_err();
    assert!(error.contains("${{inputs.nope}} names no input"), "{error}");
}
