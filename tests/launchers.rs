//! contrib/launchers/: the recipes that start `racefree stress makedirs` on many hosts
//! and then merge the verdict with `racefree stress report`. The mpirun recipe runs
//! for real under Open MPI; the Slurm script and the Kubernetes Job are checked as
//! far as a machine without Slurm or a cluster allows, then their commands are run
//! here with the launcher's rank variable set as the launcher would set it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

use crate::testenv::{
    Precondition, TestEnv, is_root, racefree_path, report_fails_with, report_passes, require,
};

fn launcher(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("contrib/launchers")
        .join(name)
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn show(out: &Output) -> String {
    format!(
        "{}\nstdout:\n{}\nstderr:\n{}",
        out.status,
        text(&out.stdout),
        text(&out.stderr)
    )
}

/// A command with no launcher's rank variable inherited from whoever runs the
/// tests (a CI job under Slurm, say), so each recipe's own launcher sets the ids.
fn clean(mut cmd: Command) -> Command {
    for var in [
        "SLURM_PROCID",
        "OMPI_COMM_WORLD_RANK",
        "JOB_COMPLETION_INDEX",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

/// The merged report passes on the tree the run left, and fails once one leaf of
/// one round is gone: it judges the shared tree, not only what the instances said.
fn report_catches_a_missing_leaf(work: &Path) {
    report_passes(work);
    // Depth 4, fanout 3 (the recipes' defaults): 81 leaves and 121 directories a round.
    let leaf = work.join("round-0/l0n2/l1n0/l2n1/l3n2");
    std::fs::remove_dir(&leaf).unwrap();
    report_fails_with(
        work,
        &["round 0: the tree has 120 directories, expected 121"],
    );
}

#[test]
#[cfg_attr(
    not(has_open_mpi),
    ignore = "needs Open MPI's mpirun (Debian package openmpi-bin)"
)]
fn the_mpirun_recipe_passes_under_open_mpi_and_its_report_catches_a_missing_leaf() {
    require(&[Precondition::OpenMpi]);
    let shared = TestEnv::new();
    // Four ranks on this machine stand in for four hosts: mpirun starts them and
    // gives each its OMPI_COMM_WORLD_RANK, which is all racefree learns of its id.
    let mut mpirun_args = String::from("--oversubscribe");
    if is_root() {
        mpirun_args.push_str(" --allow-run-as-root");
    }
    // `timeout` bounds a run that would hang (a rank that never reaches the barrier
    // gives up after racefree's own 300 s; this is sooner).
    let mpirun = |run: &str, keep: bool| {
        let mut cmd = clean(Command::new("timeout"));
        cmd.arg("120")
            .arg("sh")
            .arg(launcher("mpirun.sh"))
            .env("SHARED", shared.root())
            .env("NP", "4")
            .env("RUN", run)
            .env("DURATION", "2")
            .env("RACERS", "2")
            .env("RACEFREE", racefree_path())
            .env("MPIRUN_ARGS", &mpirun_args)
            .stdin(Stdio::null());
        if keep {
            cmd.env("KEEP", "1");
        }
        let out = cmd.output().unwrap();
        assert!(out.status.success(), "{}", show(&out));
        let stdout = text(&out.stdout);
        assert!(
            stdout.contains("stress report: makedirs, 4 instances (0, 1, 2, 3), ")
                && stdout.ends_with("verdict: PASS\n"),
            "{}",
            show(&out)
        );
    };
    // With its defaults, the recipe leaves SHARED holding only small result files.
    mpirun("ci", false);
    // Each rank found its own id: four arrivals at the barrier, four reports.
    for id in 0..4 {
        assert!(shared.root().join(format!("go-ci.arrived.{id}")).is_file());
        assert!(
            shared
                .root()
                .join(format!("racefree-stress-go-ci/report-{id}.json"))
                .is_file()
        );
    }
    holds_only_small_results(shared.root());
    // KEEP=1 keeps the trees, which a report then judges again.
    mpirun("ci-keep", true);
    let work = shared.root().join("racefree-stress-go-ci-keep");
    report_catches_a_missing_leaf(&work);
}

/// What a recipe leaves in SHARED after the verdict: the barrier's files and each
/// instance's report, a few small files; no round's tree.
fn holds_only_small_results(shared: &Path) {
    let mut entries = Vec::new();
    let mut stack = vec![shared.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let e = e.unwrap();
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                assert!(
                    meta.len() <= 64 * 1024,
                    "{} holds {} bytes",
                    e.path().display(),
                    meta.len()
                );
            }
            entries.push(e.path());
        }
    }
    assert!(
        entries.len() <= 20,
        "SHARED holds {} entries: {entries:#?}",
        entries.len()
    );
}

/// The `#SBATCH` options of a batch script as sbatch reads them: only those before
/// the first line that is neither blank nor a comment.
fn sbatch_options(script: &str) -> (BTreeMap<String, String>, Vec<String>) {
    let mut options = BTreeMap::new();
    let mut ignored = Vec::new();
    let mut in_header = true;
    for line in script.lines().skip(1) {
        let t = line.trim();
        if !t.is_empty() && !t.starts_with('#') {
            in_header = false;
        }
        if let Some(opt) = t.strip_prefix("#SBATCH ") {
            if !in_header {
                ignored.push(line.to_string());
                continue;
            }
            let (k, v) = opt.trim().split_once('=').unwrap_or((opt.trim(), ""));
            options.insert(k.to_string(), v.to_string());
        }
    }
    (options, ignored)
}

#[test]
fn sbatch_reads_options_only_before_the_first_command() {
    let (opts, ignored) =
        sbatch_options("#!/bin/bash\n# c\n#SBATCH --nodes=2\n\necho hi\n#SBATCH --time=1\n");
    assert_eq!(opts.get("--nodes").map(String::as_str), Some("2"));
    assert_eq!(ignored, ["#SBATCH --time=1"]);
}

#[test]
fn the_slurm_recipe_is_a_valid_batch_script_whose_steps_pass() {
    let path = launcher("slurm.sbatch");
    let script = std::fs::read_to_string(&path).unwrap();
    assert!(script.starts_with("#!/bin/bash\n"));
    let syntax = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(syntax.status.success(), "{}", show(&syntax));

    let (opts, ignored) = sbatch_options(&script);
    assert!(ignored.is_empty(), "sbatch ignores these: {ignored:?}");
    let known = [
        "--job-name",
        "--nodes",
        "--ntasks-per-node",
        "--time",
        "--output",
    ];
    for k in opts.keys() {
        assert!(known.contains(&k.as_str()), "unexpected #SBATCH {k}");
    }
    let count = |k: &str| -> u32 {
        opts.get(k)
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("#SBATCH {k} is not a count: {opts:?}"))
    };
    let tasks = count("--nodes") * count("--ntasks-per-node");
    assert!(tasks >= 2, "one task races nobody");
    // Slurm's time limits: [days-]hours:minutes:seconds here.
    let time = &opts["--time"];
    let fields: Vec<&str> = time.split(':').collect();
    assert!(
        fields.len() == 3 && fields.iter().all(|f| f.parse::<u32>().is_ok()),
        "--time={time}"
    );
    assert!(!opts["--job-name"].is_empty() && opts["--output"].contains("%j"));

    // The body, run as sbatch would on the first node: SLURM_NTASKS and
    // SLURM_JOB_ID from the allocation, and srun replaced by a stand-in that starts
    // one task per SLURM_NTASKS with its SLURM_PROCID, as srun does (Slurm itself
    // is not on this machine). What is proven: the script's steps and paths agree,
    // racefree takes each id from SLURM_PROCID, and the report merges all of them.
    let env = TestEnv::new();
    let shared = env.mkdir("shared");
    let srun = env.write(
        "bin/srun",
        "#!/bin/sh\n\
         # stand-in for srun: --ntasks=N, then the command, started N times\n\
         n=${1#--ntasks=}; shift; i=0; pids=\"\"\n\
         while [ \"$i\" -lt \"$n\" ]; do SLURM_PROCID=$i \"$@\" & pids=\"$pids $!\"; i=$((i+1)); done\n\
         rc=0; for p in $pids; do wait \"$p\" || rc=1; done; exit $rc\n",
    );
    env.chmod("bin/srun", 0o755);
    let path_var = format!(
        "{}:{}",
        srun.parent().unwrap().display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = clean(Command::new("timeout"))
        .arg("120")
        .arg("bash")
        .arg(&path)
        .env("PATH", path_var)
        .env("SHARED", &shared)
        .env("SLURM_JOB_ID", "4242")
        .env("SLURM_NTASKS", tasks.to_string())
        .env("DURATION", "2")
        .env("RACERS", "2")
        .env("RACEFREE", racefree_path())
        .env("KEEP", "1")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    let ids: Vec<String> = (0..tasks).map(|i| i.to_string()).collect();
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains(&format!(
            "stress report: makedirs, {tasks} instances ({}), ",
            ids.join(", ")
        )) && stdout.ends_with("verdict: PASS\n"),
        "{}",
        show(&out)
    );
    report_catches_a_missing_leaf(&shared.join("racefree-stress-go-slurm-4242"));
}

/// The documents of a YAML file, as JSON (PyYAML, which kubernetes-validate uses).
fn yaml_documents(path: &Path) -> Vec<Value> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import json, sys, yaml; json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)",
        ])
        .arg(path)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", show(&out));
    serde_json::from_slice::<Vec<Value>>(&out.stdout).unwrap()
}

#[test]
#[cfg_attr(
    not(has_kubernetes_validate),
    ignore = "needs kubernetes-validate (pip install kubernetes-validate==1.37.0)"
)]
fn the_kubernetes_job_validates_against_the_schema_and_its_pods_pass() {
    require(&[Precondition::KubernetesValidate]);
    let manifest = launcher("kubernetes-job.yaml");
    // Offline, against the Kubernetes 1.37 OpenAPI schemas the validator ships;
    // --strict refuses fields the schema does not know.
    let validate = |file: &Path| {
        Command::new("kubernetes-validate")
            .args(["--strict", "--kubernetes-version", "1.37.0", "--no-warn"])
            .arg(file)
            .output()
            .unwrap()
    };
    let out = validate(&manifest);
    assert!(out.status.success(), "{}", show(&out));
    let said = text(&out.stdout);
    assert!(
        said.contains("passed for resource job/racefree-stress")
            && said.contains("passed for resource persistentvolumeclaim/racefree-shared"),
        "{said}"
    );
    // The same check refuses a manifest with a misspelt field.
    let original = std::fs::read_to_string(&manifest).unwrap();
    let scratch = TestEnv::new();
    let broken = scratch.write(
        "broken.yaml",
        &original.replacen("completionMode:", "completionmode:", 1),
    );
    let out = validate(&broken);
    assert!(
        !out.status.success(),
        "a misspelt field passed: {}",
        show(&out)
    );

    // What the schema cannot say: the Job is Indexed (so each pod has
    // JOB_COMPLETION_INDEX), starts every pod at once (they wait for each other),
    // never retries one (its arrival file would be refused), and INSTANCES and
    // SHARED agree with the Job and the volume.
    let docs = yaml_documents(&manifest);
    let pvc = docs
        .iter()
        .find(|d| d["kind"] == "PersistentVolumeClaim")
        .unwrap();
    assert!(
        pvc["spec"]["accessModes"]
            .as_array()
            .unwrap()
            .contains(&Value::from("ReadWriteMany"))
    );
    let job = docs.iter().find(|d| d["kind"] == "Job").unwrap();
    assert_eq!(job["apiVersion"], "batch/v1");
    let spec = &job["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"], spec["parallelism"]);
    assert_eq!(spec["backoffLimit"], 0);
    let pod = &spec["template"]["spec"];
    assert_eq!(pod["restartPolicy"], "Never");
    let container = &pod["containers"][0];
    let env: BTreeMap<String, Value> = container["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect();
    let instances: u64 = env["INSTANCES"]["value"].as_str().unwrap().parse().unwrap();
    assert_eq!(spec["completions"], instances);
    let mount = &container["volumeMounts"][0];
    assert_eq!(mount["mountPath"], env["SHARED"]["value"]);
    let volume = pod["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == mount["name"])
        .unwrap();
    assert_eq!(
        volume["persistentVolumeClaim"]["claimName"],
        pvc["metadata"]["name"]
    );
    assert_eq!(
        env["RUN"]["valueFrom"]["fieldRef"]["fieldPath"],
        "metadata.labels['batch.kubernetes.io/controller-uid']"
    );

    // The pods' command, run here once per index as the Job controller would start
    // it: the manifest's environment, JOB_COMPLETION_INDEX, the shared volume a
    // temporary directory, a 2 s race, and the Job's uid made up.
    assert_eq!(container["command"], serde_json::json!(["/bin/sh", "-c"]));
    let script = container["args"][0].as_str().unwrap();
    let shared = scratch.mkdir("shared");
    let bin_dir = racefree_path().parent().unwrap().to_path_buf();
    let path_var = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pods: Vec<_> = (0..instances)
        .map(|index| {
            let mut cmd = clean(Command::new("timeout"));
            cmd.args(["120", "/bin/sh", "-c", script])
                .env("PATH", &path_var)
                .env("INSTANCES", instances.to_string())
                .env("SHARED", &shared)
                .env("DURATION", "2")
                .env("RUN", "0f5c2a64-uid")
                .env("JOB_COMPLETION_INDEX", index.to_string())
                .env("KEEP", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped());
            cmd.spawn().unwrap()
        })
        .collect();
    let outputs: Vec<Output> = pods
        .into_iter()
        .map(|p| p.wait_with_output().unwrap())
        .collect();
    for out in &outputs {
        assert!(out.status.success(), "{}", show(out));
    }
    let ids: Vec<String> = (0..instances).map(|i| i.to_string()).collect();
    let pod0 = text(&outputs[0].stdout);
    assert!(
        pod0.contains(&format!(
            "stress report: makedirs, {instances} instances ({}), ",
            ids.join(", ")
        )) && pod0.ends_with("verdict: PASS\n"),
        "{}",
        show(&outputs[0])
    );
    report_catches_a_missing_leaf(&shared.join("racefree-stress-go-0f5c2a64-uid"));
}
