//! `action.yml`, the composite GitHub Action, and the README's workflow
//! that uses it, validated by the published schemas for action metadata
//! and workflows (SchemaStore's, as `check-jsonschema` vendors them,
//! installed with pip or skipped with the reason).
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::common::{say, temp_dir};

fn check_jsonschema() -> Result<PathBuf, String> {
    let user_bin = || -> Option<PathBuf> {
        let out = Command::new("python3")
            .args(["-c", "import site; print(site.USER_BASE)"])
            .output()
            .ok()?;
        Some(Path::new(String::from_utf8_lossy(&out.stdout).trim()).join("bin/check-jsonschema"))
    };
    let works = |path: &Path| {
        Command::new(path)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if let Some(path) = user_bin().filter(|p| works(p)) {
        return Ok(path);
    }
    let _installing = crate::common::installing();
    let _ = Command::new("python3")
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--user",
            "check-jsonschema==0.39.0",
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
    user_bin()
        .filter(|p| works(p))
        .ok_or_else(|| "check-jsonschema is not installed and `python3 -m pip install --user check-jsonschema` did not work".to_string())
}

fn valid(program: &Path, schema: &str, file: &Path) -> (bool, String) {
    let out = Command::new(program)
        .args(["--builtin-schema", schema])
        .arg(file)
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), said)
}

#[test]
fn the_action_and_the_readme_workflow_validate() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let action = std::fs::read_to_string(root.join("action.yml")).unwrap();
    // The README's workflow uses this action with inputs it declares.
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    let workflow = readme
        .split("```yaml\n")
        .skip(1)
        .map(|block| &block[..block.find("```").unwrap()])
        .find(|block| block.contains("uses: OWNER/gateprobe@"))
        .expect("a README workflow using the action");
    for line in workflow.lines().skip_while(|l| l.trim() != "with:").skip(1) {
        let Some((input, _)) = line.trim().split_once(':') else {
            break;
        };
        assert!(
            action.contains(&format!("\n  {input}:\n")),
            "the README sets '{input}', which action.yml does not declare"
        );
    }
    let program = match check_jsonschema() {
        Ok(program) => program,
        Err(why) => {
            say(&format!(
                "SKIPPED the_action_and_the_readme_workflow_validate: {why}"
            ));
            return;
        }
    };
    let (ok, said) = valid(&program, "vendor.github-actions", &root.join("action.yml"));
    assert!(ok, "action.yml: {said}");
    let dir = temp_dir();
    let file = dir.path().join("workflow.yml");
    std::fs::write(&file, workflow).unwrap();
    let (ok, said) = valid(&program, "vendor.github-workflows", &file);
    assert!(ok, "the README's workflow: {said}");
    // The schema does refuse: a run step without its shell.
    let broken = dir.path().join("action.yml");
    std::fs::write(&broken, action.replacen("      shell: bash\n", "", 1)).unwrap();
    assert!(
        !valid(&program, "vendor.github-actions", &broken).0,
        "a step without shell must not validate"
    );
}
