//! A run's data inputs: each an uploaded snapshot (content-addressed, so
//! unchanged data is not sent twice), unpacked into the run's `inputs/NAME/`
//! before it starts. The job finds them under `MOOR_INPUTS_DIR`.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::runs::files;
use crate::sys;

/// Whether `name` can be an input's folder name: letters, digits, `_`, `-`,
/// not starting with `-` (Azure ML's input names are identifiers).
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && !name.starts_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Unpacks each input's archive into `run_dir/inputs/NAME/` (0700). The
/// archives are the controller's (paths checked by the tar crate: nothing
/// lands outside the folder).
pub fn unpack(run_dir: &Path, inputs: &[(String, PathBuf)]) -> io::Result<()> {
    if inputs.is_empty() {
        return Ok(());
    }
    let root = run_dir.join(files::INPUTS);
    sys::create_private_dir(&root)?;
    for (name, archive) in inputs {
        let dest = root.join(name);
        sys::create_private_dir(&dest)?;
        tar::Archive::new(fs::File::open(archive)?).unpack(&dest)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::valid_name;

    #[test]
    fn input_names_are_plain_folder_names() {
        assert!(valid_name("training_data"));
        assert!(valid_name("iris-csv2"));
        assert!(!valid_name(""));
        assert!(!valid_name("../x"));
        assert!(!valid_name("a/b"));
        assert!(!valid_name("-rf"));
        assert!(!valid_name("."));
    }
}
