//! The network flags of a target (`moor attach`, `moor network`): how it
//! reaches package indexes.

use std::path::PathBuf;

use clap::Args;

/// A target's network settings: every environment build on it honours
/// them. Given again, a setting replaces the old one; `none` clears it.
#[derive(Debug, Clone, Default, Args)]
pub struct NetworkArgs {
    /// Proxy for HTTPS requests, e.g. http://proxy.corp:3128 (no credentials).
    #[arg(long, value_name = "URL|none", help_heading = "Network")]
    pub https_proxy: Option<String>,
    /// Proxy for plain HTTP requests.
    #[arg(long, value_name = "URL|none", help_heading = "Network")]
    pub http_proxy: Option<String>,
    /// Hosts reached without the proxy, comma-separated (localhost,.corp.example).
    #[arg(long, value_name = "LIST|none", help_heading = "Network")]
    pub no_proxy: Option<String>,
    /// PEM file of CA certificates to trust besides the host's own (a
    /// corporate TLS-inspecting proxy's CA); shipped with each build.
    #[arg(long, value_name = "FILE|none", help_heading = "Network")]
    pub ca_bundle: Option<PathBuf>,
}

impl NetworkArgs {
    /// Whether any setting was given.
    pub fn any(&self) -> bool {
        self.https_proxy.is_some()
            || self.http_proxy.is_some()
            || self.no_proxy.is_some()
            || self.ca_bundle.is_some()
    }
}
