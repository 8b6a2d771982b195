//! The `config` fuzz target's entry point, apart from the others because it needs the
//! whole daemon (librdkafka included); see `entries.rs` for how the entry points are used.

use vigie_daemon::config::Config;

/// Target `config`: a configuration file and `VIGIE_…` environment overrides, loaded as
/// `vigie run` and `vigie check-config` do.
///
/// The input is the TOML text, then optionally a NUL byte and `KEY=VALUE` lines of
/// environment. A configuration is either checked and printable (`check-config` prints it)
/// or refused with an error.
pub fn config(data: &[u8]) {
    let (text, env) = match data.iter().position(|&b| b == 0) {
        Some(nul) => (&data[..nul], &data[nul + 1..]),
        None => (data, &[][..]),
    };
    // The loader reads the file as UTF-8 (`read_to_string`): other bytes never reach it.
    let Ok(text) = std::str::from_utf8(text) else {
        return;
    };
    let env: Vec<(String, String)> = String::from_utf8_lossy(env)
        .lines()
        .filter_map(|line| line.split_once('='))
        .map(|(key, value)| (key.to_owned(), value.to_owned()))
        .collect();
    match Config::from_toml(text, "fuzz.toml", env) {
        Ok(checked) => {
            let _ = format!("{checked:?}");
            if let Err(err) = toml::to_string_pretty(&checked.raw) {
                panic!("check-config cannot print a configuration it accepted: {err}");
            }
        }
        Err(err) => {
            let _ = err.to_string();
        }
    }
}
