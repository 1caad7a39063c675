//! go-plugin's `plugin.GRPCController/Shutdown`: Terraform calls it when done with the
//! process; we reply and stop serving so the process exits at once.

use tokio_util::sync::CancellationToken;
use tonic::{Request, Response, Status};

use crate::pb::plugin as pb;

#[derive(Debug, Clone)]
pub(crate) struct Controller {
    pub shutdown: CancellationToken,
}

#[tonic::async_trait]
impl pb::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(&self, _r: Request<pb::Empty>) -> Result<Response<pb::Empty>, Status> {
        tracing::debug!(
            tf_rpc = "Shutdown",
            "terraform asked the provider to shut down"
        );
        self.shutdown.cancel();
        Ok(Response::new(pb::Empty {}))
    }
}
