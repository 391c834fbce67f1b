//! PlanResourceChange: the framework's planning algorithm, then the resource's hook.

use super::ProviderServer;
use super::convert::{decode_dynamic, diagnostics_to_proto, encode_dynamic, path_to_proto};
use crate::diagnostics::{Diagnostic, Diagnostics};
use crate::planning::{plan_resource, retain_replacing_paths};
use crate::proto::tfplugin6 as pb;
use crate::provider::ModifyPlan;
use crate::value::Value;

impl ProviderServer {
    /// PlanResourceChange. See [`crate::planning`] for the algorithm. Destroys (a null
    /// proposed state) plan null, after the resource's hook if it asked for destroy plans.
    pub async fn plan_resource_change(
        &self,
        request: pb::plan_resource_change::Request,
    ) -> pb::plan_resource_change::Response {
        match self.plan(&request).await {
            Ok((planned_state, plan)) => pb::plan_resource_change::Response {
                planned_state: Some(planned_state),
                requires_replace: plan.requires_replace.iter().map(path_to_proto).collect(),
                planned_private: plan.private,
                diagnostics: diagnostics_to_proto(&plan.diagnostics),
                ..Default::default()
            },
            Err(diagnostics) => pb::plan_resource_change::Response {
                diagnostics: diagnostics_to_proto(&diagnostics),
                ..Default::default()
            },
        }
    }

    async fn plan(
        &self,
        request: &pb::plan_resource_change::Request,
    ) -> Result<(pb::DynamicValue, ModifyPlan), Diagnostics> {
        let registered = self.resource(&request.type_name)?;
        let ty = registered.schema.value_type();
        let decode = |value: Option<&pb::DynamicValue>| decode_dynamic(value, &ty);
        let prior = decode(request.prior_state.as_ref())?;
        let proposed = decode(request.proposed_new_state.as_ref())?;
        let config = decode(request.config.as_ref())?;

        let mut plan = if proposed.is_null() {
            ModifyPlan {
                config,
                prior,
                planned: Value::Null,
                requires_replace: Vec::new(),
                private: request.prior_private.clone(),
                diagnostics: Diagnostics::new(),
            }
        } else {
            let outcome = plan_resource(&registered.schema, &prior, &proposed, &config);
            ModifyPlan {
                config,
                prior,
                planned: outcome.planned,
                requires_replace: outcome.requires_replace,
                private: request.prior_private.clone(),
                diagnostics: outcome.diagnostics,
            }
        };
        if !proposed.is_null() || registered.resource.plan_destroy() {
            registered
                .resource
                .modify_plan(&self.context(), &mut plan)
                .await;
        }
        if proposed.is_null() && !plan.planned.is_null() {
            plan.diagnostics.push(Diagnostic::error(
                "Invalid Destroy Plan",
                "The resource planned a value for a destroy; a destroy plan must stay null. This is a bug in the provider.",
            ));
        }
        if plan.diagnostics.has_errors() {
            return Err(plan.diagnostics);
        }
        plan.planned = registered
            .schema
            .block
            .normalize(std::mem::replace(&mut plan.planned, Value::Null));
        plan.requires_replace = retain_replacing_paths(
            &plan.prior,
            &plan.planned,
            std::mem::take(&mut plan.requires_replace),
        );
        let encoded = encode_dynamic(&plan.planned, &ty)?;
        Ok((encoded, plan))
    }
}
