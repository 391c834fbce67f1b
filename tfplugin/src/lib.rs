//! The Terraform plugin protocol layer (tfplugin6).

/// Generated protocol code.
#[allow(missing_docs, clippy::all)]
pub mod proto {
    /// tfplugin6.
    pub mod tfplugin6 {
        tonic::include_proto!("tfplugin6");
    }
    /// go-plugin.
    pub mod plugin {
        tonic::include_proto!("plugin");
    }
}
