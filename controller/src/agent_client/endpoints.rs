//! The endpoint requests of [`AgentClient`].

use std::time::Duration;

use moor_proto::endpoint::{EndpointInfo, EndpointSpec};
use moor_proto::{Request, Response};

use super::{AgentClient, CALL_TIMEOUT};
use crate::error::Result;

/// Stop and delete wait for the server's grace period (10 s) and more.
const STOP_TIMEOUT: Duration = Duration::from_secs(40);

impl AgentClient {
    /// Creates an endpoint; it answers `starting`.
    pub async fn create_endpoint(&self, spec: EndpointSpec) -> Result<EndpointInfo> {
        let request = Request::CreateEndpoint {
            spec: Box::new(spec),
        };
        self.ask(request, CALL_TIMEOUT, expect_endpoint).await
    }

    /// Every endpoint on the host.
    pub async fn endpoints(&self) -> Result<Vec<EndpointInfo>> {
        self.ask(Request::ListEndpoints, CALL_TIMEOUT, |r| match r {
            Response::Endpoints { endpoints } => Ok(endpoints),
            other => Err(Box::new(other)),
        })
        .await
    }

    /// One endpoint.
    pub async fn endpoint(&self, name: &str) -> Result<EndpointInfo> {
        let request = Request::GetEndpoint { name: name.into() };
        self.ask(request, CALL_TIMEOUT, expect_endpoint).await
    }

    /// Stops an endpoint's server.
    pub async fn stop_endpoint(&self, name: &str) -> Result<EndpointInfo> {
        let request = Request::StopEndpoint { name: name.into() };
        self.ask(request, STOP_TIMEOUT, expect_endpoint).await
    }

    /// Starts an endpoint's server again.
    pub async fn start_endpoint(&self, name: &str) -> Result<EndpointInfo> {
        let request = Request::StartEndpoint { name: name.into() };
        self.ask(request, CALL_TIMEOUT, expect_endpoint).await
    }

    /// Stops and removes an endpoint.
    pub async fn delete_endpoint(&self, name: &str) -> Result<EndpointInfo> {
        let request = Request::DeleteEndpoint { name: name.into() };
        self.ask(request, STOP_TIMEOUT, expect_endpoint).await
    }
}

fn expect_endpoint(response: Response) -> Result<EndpointInfo, Box<Response>> {
    match response {
        Response::Endpoint { endpoint } => Ok(*endpoint),
        other => Err(Box::new(other)),
    }
}
