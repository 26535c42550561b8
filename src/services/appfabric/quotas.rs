//! AppFabric's service quotas, as data.
//!
//! Source: AWS General Reference, "AWS AppFabric endpoints and quotas"
//! (docs.aws.amazon.com/general/latest/gr/appfabric.html), read for this issue: application
//! bundles 1 per account and Region, application authorizations 50 (the page counts them
//! per account and Region; with one bundle per Region that is 50 per bundle), ingestion
//! destinations 5 per ingestion; none is adjustable. The ingestions row was not in the part
//! of the page that could be read; 50 per bundle is the figure the issue gives.
//!
//! The quota codes of the Service Quotas console could not be confirmed, so `code` is a
//! descriptive name rather than an `L-...` code.

/// `serviceCode` of every `ServiceQuotaExceededException`.
pub const SERVICE_CODE: &str = "appfabric";

/// One quota.
#[derive(Debug)]
pub struct Quota {
    /// `quotaCode` on the wire.
    pub code: &'static str,
    /// `resourceType` on the wire: the kind of resource being created.
    pub resource_type: &'static str,
    /// How many are allowed.
    pub limit: usize,
    /// What the limit counts, for the message.
    pub per: &'static str,
}

/// App bundles per account and Region.
pub static APP_BUNDLES: Quota = Quota {
    code: "AppBundlesPerRegion",
    resource_type: "AppBundle",
    limit: 1,
    per: "account and Region",
};

/// App authorizations per app bundle.
pub static APP_AUTHORIZATIONS: Quota = Quota {
    code: "AppAuthorizationsPerAppBundle",
    resource_type: "AppAuthorization",
    limit: 50,
    per: "app bundle",
};

/// Ingestions per app bundle.
pub static INGESTIONS: Quota = Quota {
    code: "IngestionsPerAppBundle",
    resource_type: "Ingestion",
    limit: 50,
    per: "app bundle",
};

/// Ingestion destinations per ingestion.
pub static INGESTION_DESTINATIONS: Quota = Quota {
    code: "IngestionDestinationsPerIngestion",
    resource_type: "IngestionDestination",
    limit: 5,
    per: "ingestion",
};

impl Quota {
    /// Refuses a create when `existing` resources already fill the quota of `parent_id`.
    pub fn check(
        &'static self,
        existing: usize,
        parent_id: &str,
    ) -> Result<(), super::AppFabricError> {
        if existing < self.limit {
            return Ok(());
        }
        Err(super::AppFabricError::QuotaExceeded {
            message: format!(
                "The quota of {} {} per {} has been reached",
                self.limit, self.resource_type, self.per
            ),
            resource_id: parent_id.to_owned(),
            quota: self,
        })
    }
}
