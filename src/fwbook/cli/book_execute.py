"""Execute one chapter notebook in a fresh Jupyter kernel, and never wait for ever.

:func:`execute_notebook` is ``papermill.execute_notebook`` with its own engine, whose client
differs from papermill's (nbclient's) in three ways.

* **No widget messages back to the kernel.** nbclient stands in for a browser's Output widget
  (``ipywidgets.Output``): every output a cell sends into such a widget is echoed back to the
  kernel as a ``comm_msg`` on the *shell* socket while the cell is still running, so the
  client sends on the very socket on which it is waiting for the cell's ``execute_reply``.
  That is the chapter 2 hang (its explorer is such a widget): run 20 times beside two busy
  processes with papermill's client and a 120 s cell limit, chapter 2 stalled twice, both
  times in the explorer's cell, and both times the cell completed normally at exactly 120 s:
  the kernel had sent its reply within two seconds, the reply sat unread in the client's
  socket (zmq.asyncio's edge-triggered wake-up was missed) until the poll's timeout looked
  again. With the book's 30-minute limit that was a 30-minute hang. No frontend shows anything
  here, so the stand-in keeps what it captures (saved with the widget state, as before) and
  sends nothing: the build's only messages on the shell socket are one ``execute_request`` per
  cell, each after the previous reply. With this client: 20 runs, no stall.
* **A watchdog** (:class:`Watchdog`). Every second it reads ``zmq.EVENTS`` of the shell and
  IOPub sockets, which makes pyzmq handle a message that is waiting there, so a missed wake-up
  would cost a second, not the cell limit (such recoveries are counted: ``missed_wakeups``).
  A kernel that dies is noticed by nbclient within a second. A kernel that never starts a cell,
  that goes idle without sending its reply, or that neither publishes anything nor answers a
  ping on the control channel (which ipykernel serves from its own thread, so a long
  computation still answers) is given up within seconds to a minute and a half
  (:class:`ChapterCellError` naming the cell). Long training cells stay possible.
* **IPC, not TCP.** The kernel's channels are Unix sockets in a private folder, not TCP ports
  picked by "bind port 0, close, hope nobody takes it" on a machine where other builds and test
  runs start kernels at the same time (and no warning about unencrypted TCP per chapter).
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty
from time import monotonic
from typing import IO, Any, Optional

import zmq
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.output_widget import OutputWidget
from nbclient.util import run_sync
from papermill.clientwrap import PapermillNotebookClient
from papermill.engines import NBClientEngine, papermill_engines
from papermill.log import logger

ENGINE_NAME = "fwbook"
# after a cell's reply, how long its last outputs (and the kernel's 'idle') may take to arrive
# (nbclient's default of 4 s is tight on a crowded 2-core machine)
IOPUB_TIMEOUT_S = 30


@dataclass(frozen=True)
class Watchdog:
    """How long a healthy kernel may take, in seconds, before the cell is given up.

    Attributes:
        start_s: from sending a cell to the kernel saying it started it (``status: busy``).
        reply_s: from the kernel going idle after a cell to its ``execute_reply``.
        silence_s: a busy kernel that publishes nothing and answers no control-channel ping
            for this long has stopped answering.
        ping_s: after this much silence, ping the kernel on the control channel (and again
            every ``ping_s`` while the silence lasts).
    """

    start_s: float = 60.0
    reply_s: float = 30.0
    silence_s: float = 90.0
    ping_s: float = 10.0


class ChapterCellError(RuntimeError):
    """Cell ``cell_index`` was given up: the kernel died or stopped answering, or the cell ran
    past its time limit. ``reason`` says which, in words."""

    def __init__(self, cell_index: int, reason: str):
        super().__init__(reason)
        self.cell_index = cell_index
        self.reason = reason


class _SilentOutputWidget(OutputWidget):
    """nbclient's stand-in for the browser's Output widget, without the echo to the kernel."""

    def sync_state(self) -> None:
        """Keep the captured outputs (they are saved with the widget state); send nothing."""


@dataclass
class _CellWatch:
    sent: float
    busy: Optional[float] = None
    idle: Optional[float] = None
    heard: float = 0.0  # last time the kernel published something for this cell or answered a ping
    waiting: set = field(default_factory=set)  # sockets seen with an unread message at the last tick
    last_tick: float = 0.0


class _Client(PapermillNotebookClient):
    """papermill's client with a watchdog, a silent Output-widget stand-in and IPC channels."""

    def __init__(self, nb_man, watchdog: Watchdog, ipc_folder: str, **kwargs):
        super().__init__(nb_man, **kwargs)
        self.watchdog = watchdog
        self.widget_registry = {"@jupyter-widgets/output": {"OutputModel": _SilentOutputWidget}}
        self._watch: Optional[_CellWatch] = None
        self._ipc_folder = ipc_folder
        self.missed_wakeups = 0  # messages found unread a second after they arrived

    # -- the kernel over IPC ------------------------------------------------------------------
    def create_kernel_manager(self):
        manager = super().create_kernel_manager()
        manager.transport = "ipc"
        manager.ip = str(Path(self._ipc_folder) / "channel")
        return manager

    # -- the watchdog -------------------------------------------------------------------------
    def process_message(self, msg, cell, cell_index):
        """Every IOPub message of the running cell passes here: note busy, idle, anything."""
        watch = self._watch
        if watch is not None:
            now = watch.heard = monotonic()
            if msg["msg_type"] == "status":
                state = msg["content"].get("execution_state")
                if state == "busy" and watch.busy is None:
                    watch.busy = now
                elif state == "idle":
                    watch.idle = now
        return super().process_message(msg, cell, cell_index)

    async def async_execute_cell(self, cell, cell_index, execution_count=None,
                                 store_history=True):
        if cell.cell_type != "code" or not cell.source.strip():
            return await super().async_execute_cell(cell, cell_index, execution_count,
                                                    store_history)
        self._watch = watch = _CellWatch(sent=monotonic())
        watch.heard = watch.sent
        execution = asyncio.ensure_future(super().async_execute_cell(
            cell, cell_index, execution_count, store_history))
        dog = asyncio.ensure_future(self._watchdog(watch))
        try:
            await asyncio.wait({execution, dog}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._watch = None
        if execution.done():
            dog.cancel()
            try:
                return execution.result()
            except DeadKernelError:
                raise ChapterCellError(cell_index, "the kernel died") from None
            except CellTimeoutError as error:
                self.shutdown_kernel = "immediate"  # still busy with the cell: no goodbye
                reason = (f"the kernel replied but the cell's output did not finish arriving "
                          f"within {self.iopub_timeout} s" if "IOPub" in str(error) else
                          f"the cell ran past its time limit of {self.timeout} s")
                raise ChapterCellError(cell_index, reason) from None
        execution.cancel()
        try:
            await execution
        except BaseException:  # noqa: BLE001 - the cell is abandoned, whatever it raised
            pass
        self.shutdown_kernel = "immediate"  # it is not answering: do not wait for a goodbye
        raise ChapterCellError(cell_index, dog.result())

    execute_cell = run_sync(async_execute_cell)

    async def _watchdog(self, watch: _CellWatch) -> str:
        """Return why the cell is given up; runs until cancelled otherwise."""
        limits = self.watchdog
        ping: Optional[asyncio.Future] = None
        last_ping = 0.0
        try:
            while True:
                await asyncio.sleep(min(1.0, limits.ping_s))
                self._rearm(watch)
                now = monotonic()
                if watch.idle is not None:
                    if now - watch.idle > limits.reply_s:
                        return (f"the kernel finished the cell but its reply never came "
                                f"(waited {limits.reply_s:g} s after it went idle)")
                    continue
                if watch.busy is None and now - watch.sent > limits.start_s:
                    return (f"the kernel never started the cell (no 'busy' within "
                            f"{limits.start_s:g} s of sending it)")
                if now - watch.heard > limits.silence_s:
                    return (f"the kernel stopped answering (no output and no answer to a "
                            f"control-channel ping for {limits.silence_s:g} s)")
                if (now - watch.heard > limits.ping_s and now - last_ping > limits.ping_s
                        and (ping is None or ping.done())):
                    last_ping = now
                    ping = asyncio.ensure_future(self._ping(watch, limits.ping_s))
        finally:
            if ping is not None:
                ping.cancel()

    def _rearm(self, watch: _CellWatch) -> None:
        """Look at the shell and IOPub sockets: a message waiting there gets read now.

        zmq.asyncio learns of new messages from an edge-triggered descriptor; a wake-up that
        is missed leaves a message unread until the next poll timeout (that was the chapter 2
        hang: the reply sat in the socket for 30 minutes). Reading ``zmq.EVENTS`` makes pyzmq
        schedule its handler when a message is waiting, so a missed wake-up costs a second.
        """
        quiet = watch.heard <= watch.last_tick  # no IOPub message handled since the last tick
        for name in ("shell", "iopub"):
            socket = getattr(self.kc, f"{name}_channel").socket
            if socket is None or socket.closed:
                continue
            waiting = bool(socket.get(zmq.EVENTS) & zmq.POLLIN)
            # unread since the last tick (and, on IOPub, nothing read meanwhile): missed
            if waiting and name in watch.waiting and (name == "shell" or quiet):
                self.missed_wakeups += 1
            watch.waiting.discard(name)
            if waiting:
                watch.waiting.add(name)
        watch.last_tick = monotonic()

    async def _ping(self, watch: _CellWatch, timeout: float) -> None:
        """``kernel_info_request`` on the control channel; an answer counts as being heard."""
        request = self.kc.session.msg("kernel_info_request")
        self.kc.control_channel.send(request)
        deadline = monotonic() + timeout
        while (left := deadline - monotonic()) > 0:
            try:
                reply = await self.kc.control_channel.get_msg(timeout=left)
            except (Empty, asyncio.TimeoutError):
                return
            if reply["parent_header"].get("msg_id") == request["header"]["msg_id"]:
                watch.heard = monotonic()
                return


class _Engine(NBClientEngine):
    """papermill engine ``fwbook``: :class:`_Client`, with the kernel's environment and folder."""

    @classmethod
    def execute_managed_notebook(cls, nb_man, kernel_name, log_output=False, stdout_file=None,
                                 stderr_file=None, start_timeout=60, execution_timeout=None,
                                 watchdog: Optional[Watchdog] = None,
                                 kernel_env: Optional[dict] = None,
                                 kernel_cwd: Optional[str] = None,
                                 kernel_output: Optional[IO] = None, **kwargs):
        launch: dict[str, Any] = {}
        if kernel_env is not None:
            launch["env"] = kernel_env
        if kernel_cwd is not None:
            launch["cwd"] = kernel_cwd
        if kernel_output is not None:  # the kernel process's own stdout and stderr
            launch["stdout"] = launch["stderr"] = kernel_output
        # a short private folder for the sockets: a Unix socket path must stay under ~100 bytes
        ipc_folder = tempfile.mkdtemp(prefix="fwbook-kernel-")
        try:
            client = _Client(nb_man, watchdog=watchdog or Watchdog(), ipc_folder=ipc_folder,
                             timeout=execution_timeout, startup_timeout=start_timeout,
                             iopub_timeout=IOPUB_TIMEOUT_S,
                             kernel_name=kernel_name, log=logger, log_output=log_output,
                             stdout_file=stdout_file, stderr_file=stderr_file)
            notebook = client.execute(**launch)
            notebook.metadata.setdefault("fwbook", {})["kernel"] = {
                "transport": "ipc", "missed_wakeups": client.missed_wakeups}
            return notebook
        finally:
            shutil.rmtree(ipc_folder, ignore_errors=True)


papermill_engines.register(ENGINE_NAME, _Engine)


def execute_notebook(notebook, output_path: Path, parameters: dict, *, cwd: Path, env: dict,
                     timeout: Optional[int] = None, watchdog: Optional[Watchdog] = None,
                     kernel_output: Optional[IO] = None):
    """Execute ``notebook`` (a NotebookNode) with ``parameters`` injected; write ``output_path``.

    The kernel is ``python3`` started in ``cwd`` with environment ``env``; its process's own
    output (not the cells' output) goes to ``kernel_output`` when given. papermill writes the
    notebook to ``output_path`` as it goes.

    Raises:
        papermill.PapermillExecutionError: a cell raised.
        ChapterCellError: the kernel died or stopped answering (see :class:`Watchdog`), or a
            cell ran past ``timeout`` seconds.
    """
    import papermill

    return papermill.execute_notebook(
        notebook, str(output_path), parameters=parameters, engine_name=ENGINE_NAME,
        kernel_name="python3", progress_bar=False, log_output=False, execution_timeout=timeout,
        watchdog=watchdog or Watchdog(), kernel_env=env, kernel_cwd=str(cwd),
        kernel_output=kernel_output)
