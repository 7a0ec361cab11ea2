//! One service of the registry, as the process handles it: opened on its
//! own database, then served on its listener. Type-erased so that the
//! registry is a plain list.

use std::{future::Future, pin::Pin, sync::Arc};

use crm_server::{ServerConfig, ServerError, Shutdown};
use crm_service::{Context, Service};
use tokio::net::TcpListener;

use crate::Settings;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

/// An opened service, ready to serve on a listener until shutdown.
pub type Launch = Box<
    dyn FnOnce(
            TcpListener,
            Arc<crm_auth::Verifier>,
            ServerConfig,
            Shutdown,
        ) -> BoxFuture<Result<(), ServerError>>
        + Send,
>;

type Open = dyn Fn(&Settings, Context) -> BoxFuture<Result<Launch, crm_store::DbErr>> + Send + Sync;

type NeedsIdentity = dyn Fn(&Settings) -> Option<&'static str> + Send + Sync;

/// A service of the suite, as listed in the registry.
pub struct Entry {
    /// `crm serve <name>`, its schema, its settings section.
    pub name: &'static str,
    /// The proto package the gateway routes to it.
    pub package: &'static str,
    /// The name of its settings section in the registry line; the same as
    /// `name` (checked by a test).
    pub section: &'static str,
    open: Box<Open>,
    needs_identity: Box<NeedsIdentity>,
}

impl Entry {
    /// The entry of service `S`, whose settings are `section` of the suite's.
    pub fn of<S: Service>(
        section_name: &'static str,
        section: fn(&Settings) -> &S::Settings,
    ) -> Self {
        Entry {
            name: S::NAME,
            package: S::PACKAGE,
            section: section_name,
            open: Box::new(move |settings, context| {
                let section = section(settings).clone();
                Box::pin(async move {
                    let service = S::open(context, section).await?;
                    let launch: Launch = Box::new(move |listener, verifier, server, shutdown| {
                        Box::pin(async move {
                            crm_service::serve(&service, listener, verifier, &server, shutdown)
                                .await
                        })
                    });
                    Ok(launch)
                })
            }),
            needs_identity: Box::new(move |settings| S::needs_identity(section(settings))),
        }
    }

    /// What of the service's settings acts as the service identity
    /// ([`Service::needs_identity`]).
    pub fn needs_identity(&self, settings: &Settings) -> Option<&'static str> {
        (self.needs_identity)(settings)
    }

    /// Opens (and migrates) the service.
    pub async fn open(
        &self,
        settings: &Settings,
        context: Context,
    ) -> Result<Launch, crm_store::DbErr> {
        (self.open)(settings, context).await
    }
}

impl std::fmt::Debug for Entry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Entry")
            .field("name", &self.name)
            .field("package", &self.package)
            .finish_non_exhaustive()
    }
}
