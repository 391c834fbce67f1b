//! Resource ids. A runner's id is the URL of its control-store folder,
//! `<control_store>/runners/<runner_id>`, and a pipeline's is `<runner id>/pipelines/<pipeline_id>`:
//! an id alone locates the object, so `runner_id = streaming_runner.x.id` is the only
//! reference a pipeline needs and `terraform import` needs nothing else.

use lakestream_spec::{StoreUrl, rules};

const RUNNERS: &str = "/runners/";
const PIPELINES: &str = "/pipelines/";

/// Where a runner lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunnerAddress {
    /// The control store.
    pub control_store: StoreUrl,
    /// The runner's id inside it.
    pub runner_id: String,
}

impl RunnerAddress {
    /// Parses `<control_store>/runners/<runner_id>`; the message says what was expected.
    pub fn parse(id: &str) -> Result<Self, String> {
        let expected = "expected <control_store>/runners/<runner_id>, e.g. file:///var/lakestream/runners/orders-4k2m9q (the id of a streaming_runner)";
        let (store, runner_id) = id
            .rsplit_once(RUNNERS)
            .ok_or_else(|| format!("{id:?} is not a runner id; {expected}"))?;
        rules::object_id(runner_id).map_err(|message| format!("{id:?}: {message}; {expected}"))?;
        let control_store =
            StoreUrl::parse(store).map_err(|message| format!("{id:?}: {message}"))?;
        Ok(Self {
            control_store,
            runner_id: runner_id.to_owned(),
        })
    }

    /// The id.
    pub fn id(&self) -> String {
        format!("{}{RUNNERS}{}", self.control_store, self.runner_id)
    }
}

/// Where a pipeline lives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PipelineAddress {
    /// Its runner.
    pub runner: RunnerAddress,
    /// The pipeline's id.
    pub pipeline_id: String,
}

impl PipelineAddress {
    /// Parses `<runner id>/pipelines/<pipeline_id>`.
    pub fn parse(id: &str) -> Result<Self, String> {
        let expected = "expected <runner id>/pipelines/<pipeline_id>, e.g. file:///var/lakestream/runners/orders-4k2m9q/pipelines/orders-7h3x1c (the id of a streaming_pipeline)";
        let (runner, pipeline_id) = id
            .rsplit_once(PIPELINES)
            .ok_or_else(|| format!("{id:?} is not a pipeline id; {expected}"))?;
        rules::object_id(pipeline_id)
            .map_err(|message| format!("{id:?}: {message}; {expected}"))?;
        Ok(Self {
            runner: RunnerAddress::parse(runner)?,
            pipeline_id: pipeline_id.to_owned(),
        })
    }

    /// The id.
    pub fn id(&self) -> String {
        format!("{}{PIPELINES}{}", self.runner.id(), self.pipeline_id)
    }
}

/// A fresh id: the slug of `name` and six random characters, so a re-created runner or
/// pipeline never reuses the files of its predecessor.
pub fn new_id(name: &str) -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyz23456789";
    let mut rng = rand::rng();
    let suffix: String = (0..6)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{suffix}", rules::slug(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_errors_say_what_is_expected() {
        let pipeline = PipelineAddress::parse("s3://bucket/cs/runners/r-1/pipelines/p-2").unwrap();
        assert_eq!(pipeline.runner.runner_id, "r-1");
        assert_eq!(pipeline.runner.control_store.to_string(), "s3://bucket/cs");
        assert_eq!(pipeline.id(), "s3://bucket/cs/runners/r-1/pipelines/p-2");
        let err = RunnerAddress::parse("r-1").unwrap_err();
        assert!(
            err.contains("expected <control_store>/runners/<runner_id>"),
            "{err}"
        );
        assert!(RunnerAddress::parse("file:///x/runners/Bad Id").is_err());
        let id = new_id("Orders DB");
        assert!(
            id.starts_with("orders-db-") && rules::object_id(&id).is_ok(),
            "{id}"
        );
    }
}
