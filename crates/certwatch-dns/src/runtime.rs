//! The injected clock reaches hickory's validator through the runtime it is generic over:
//! `DnssecDnsHandle` asks `<Runtime as RuntimeProvider>::Timer::current_time()`, a function
//! without a receiver, so the check's clock is put in a task-local for the duration of the
//! check and read there. Outside a check the system time is used. Everything else delegates
//! to hickory's tokio runtime.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use hickory_net::runtime::{RuntimeProvider, Time, TokioRuntimeProvider, TokioTime};

use crate::clock::{Clock, SystemClock};

tokio::task_local! {
    static CLOCK: Arc<dyn Clock>;
}

/// Runs `fut` with `clock` as the validator's notion of now.
pub(crate) async fn with_clock<F: Future>(clock: Arc<dyn Clock>, fut: F) -> F::Output {
    CLOCK.scope(clock, fut).await
}

/// hickory's tokio runtime with the injected clock.
#[derive(Clone, Default)]
pub(crate) struct ClockRuntime(TokioRuntimeProvider);

/// The timer of [`ClockRuntime`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct ClockTime;

#[async_trait::async_trait]
impl Time for ClockTime {
    async fn delay_for(duration: Duration) {
        TokioTime::delay_for(duration).await
    }

    async fn timeout<F: 'static + Future + Send>(
        duration: Duration,
        future: F,
    ) -> Result<F::Output, io::Error> {
        TokioTime::timeout(duration, future).await
    }

    fn current_time() -> u64 {
        CLOCK
            .try_with(|c| c.now_unix())
            .unwrap_or_else(|_| SystemClock.now_unix())
    }
}

impl RuntimeProvider for ClockRuntime {
    type Handle = <TokioRuntimeProvider as RuntimeProvider>::Handle;
    type Timer = ClockTime;
    type Udp = <TokioRuntimeProvider as RuntimeProvider>::Udp;
    type Tcp = <TokioRuntimeProvider as RuntimeProvider>::Tcp;

    fn create_handle(&self) -> Self::Handle {
        self.0.create_handle()
    }

    fn connect_tcp(
        &self,
        server_addr: SocketAddr,
        bind_addr: Option<SocketAddr>,
        timeout: Option<Duration>,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Tcp, io::Error>>>> {
        self.0.connect_tcp(server_addr, bind_addr, timeout)
    }

    fn bind_udp(
        &self,
        local_addr: SocketAddr,
        server_addr: SocketAddr,
    ) -> Pin<Box<dyn Send + Future<Output = Result<Self::Udp, io::Error>>>> {
        self.0.bind_udp(local_addr, server_addr)
    }
}
