"""The Bot subclass: owns the HTTP session, storage, the Unmixr client and the command tree."""

from __future__ import annotations

import asyncio
import logging
import pkgutil
from collections.abc import Coroutine
from datetime import timedelta
from typing import Any

import aiohttp
import discord
from discord import app_commands
from discord.ext import commands

import cogs
from bot.alerts import AccountLimitAlert, LowBalanceWatch
from bot.audio import AudioCache
from bot.audio.cache import REMOVE_EXPIRED_SECONDS
from bot.audio.sessions import VoiceSessions
from bot.audio.shared_tier import shared_tier
from bot.budget import CreditGuard
from bot.catalogue import REFRESH_SECONDS, Catalogue
from bot.clones import AwaitedClones
from bot.i18n import Message, _, language, load_catalogues
from bot.i18n.commands import CommandIds, CommandTranslator
from bot.instance import ProcessInstance
from bot.lookups import LookupGate, StorageReadiness
from bot.mentions import MemberLookups
from bot.metrics import Metrics
from bot.monitoring import MonitoringServer
from bot.reach import open_to_user_installs
from bot.replies import NO_MENTIONS, answer, post
from bot.settings import Settings
from bot.speech import SpeechService
from bot.storage import Storage
from bot.tree import UnmixrTree, record_command
from bot.unmixr import UnmixrClient, UnmixrError
from bot.voice_internals import skip_own_messages, view_takes
from bot.wording import counted

log = logging.getLogger(__name__)

# How long a shutdown waits for interactions that are still being answered (PRODUCT.md, Continuity).
SHUTDOWN_GRACE_SECONDS = 10.0
# Should discord.py's view store be unreadable, a control press that no view has acknowledged by then belongs to
# a view this process no longer has (an answer is due within 2.5 s of receipt: PRODUCT.md, Discord's limits).
STALE_CONTROL_GRACE_SECONDS = 1.5
COMPACT_SECONDS = 6 * 3600


def bot_intents(*, message_content: bool) -> discord.Intents:
    """The few intents the bot needs: servers, voice states, and messages for readouts."""
    intents = discord.Intents.none()
    intents.guilds = True  # channels, roles and the servers themselves
    intents.voice_states = True  # who is in which voice channel, for /join and readouts
    intents.guild_messages = True  # new messages in the readout channel
    intents.message_content = message_content  # the text of those messages (privileged)
    return intents


def _shard_options(settings: Settings) -> dict[str, Any]:
    """SHARD_COUNT and SHARD_IDS for AutoShardedBot; neither: Discord's recommended count, every shard here."""
    options: dict[str, Any] = {}
    if settings.shard_count is not None:
        options["shard_count"] = settings.shard_count
    if settings.shard_ids is not None:
        options["shard_ids"] = list(settings.shard_ids)
    return options


class UnmixrBot(commands.AutoShardedBot):
    """The unmixr-discord bot."""

    def __init__(self, settings: Settings, *, message_content: bool = True) -> None:
        super().__init__(
            command_prefix=commands.when_mentioned,
            intents=bot_intents(message_content=message_content),
            help_command=None,
            tree_cls=UnmixrTree,
            allowed_mentions=NO_MENTIONS,
            chunk_guilds_at_startup=False,
            # Nothing reads old messages back (readouts speak new ones as they arrive): no message cache.
            max_messages=None,
            member_cache_flags=discord.MemberCacheFlags.from_intents(bot_intents(message_content=False)),
            allowed_contexts=app_commands.AppCommandContext(guild=True, dm_channel=False, private_channel=False),
            allowed_installs=app_commands.AppInstallationType(guild=True, user=False),
            **_shard_options(settings),
        )
        # Its own replies come back through the readout intent; nothing reads them (bots are never read out).
        skip_own_messages(self)
        self.settings = settings
        self.readouts_enabled = message_content
        self.shutting_down = False
        self.background_tasks: set[asyncio.Task[Any]] = set()
        self.inflight: set[asyncio.Task[Any]] = set()
        self.failed_extensions: dict[str, BaseException] = {}
        # Set when the gateway first speaks: a start waits only so long for it (bot.connect.connect_within).
        self.gateway_answered = asyncio.Event()
        self.metrics = Metrics()
        self.monitoring: MonitoringServer | None = None
        # The ids of the registered commands, for mentions in replies, and each server's preferred locale as its
        # interactions last said (for readout words when the clip's language is not one the bot ships).
        self.command_ids = CommandIds()
        self._guild_locales: dict[int, str] = {}
        # Opened in setup_hook, closed in close(), in reverse order.
        self.session: aiohttp.ClientSession
        self.storage: Storage
        self.unmixr: UnmixrClient
        self.audio_cache: AudioCache
        self.catalogue: Catalogue
        self.clones: AwaitedClones
        self.guard: CreditGuard
        self.lookups: LookupGate
        self.speech: SpeechService
        self.voice: VoiceSessions
        self.balance_watch: LowBalanceWatch
        self.instance: ProcessInstance
        self._claiming: asyncio.Future[None] | None = None

    async def setup_hook(self) -> None:
        """Open every resource, load the extensions and, in development, sync the dev server."""
        settings = self.settings
        # Every language's catalogue, read once at start; the commands are localized from them at each sync.
        load_catalogues()
        await self.tree.set_translator(CommandTranslator())
        self.session = aiohttp.ClientSession()
        self.storage = await Storage.open(settings.database_location)
        log.info("storage: %s", self.storage.description)
        # Before any hold is made: every hold names this process (and a crashed one's are released now).
        self.instance = ProcessInstance(self.storage, leases=not self.storage.is_local)
        self.instance.on_lease_lost = self._lease_lost
        await self.instance.start()
        if settings.shard_count is not None:
            log.info("this process runs %s", self.describe_shards())
        self.unmixr = UnmixrClient(
            self.session,
            settings.unmixr_api_key,
            base_url=settings.unmixr_base_url,
            openai_api_key=settings.openai_api_key,
            max_concurrency=settings.unmixr_max_concurrency,
            observer=self.metrics.upstream,
        )
        shared = shared_tier(
            self.storage,
            settings.audio_cache_db_max_bytes,
            on_size=self.metrics.audio_cache_bytes.labels(tier="postgresql").set,
        )
        self.audio_cache = AudioCache(settings.audio_cache_dir, settings.audio_cache_max_bytes, shared=shared)
        self.member_lookups = MemberLookups()
        self.catalogue = Catalogue(self.unmixr, self.storage, include_openai=settings.openai_api_key is not None)
        self.clones = AwaitedClones(self.storage, self.catalogue, limit=settings.max_clones_per_server)
        alert_post = self._post_alert if settings.alert_channel_id is not None else None
        self.guard = CreditGuard(
            self.storage,
            server_daily=settings.server_daily_budget,
            member_hourly=settings.member_hourly_budget,
            account_daily=settings.account_daily_budget,
            user_install_daily=settings.user_install_daily_budget,
            user_install_total_daily=settings.user_install_total_daily_budget,
            metrics=self.metrics,
            on_account_limit=AccountLimitAlert(self.storage, post=alert_post, clock=lambda: self.guard.clock()),
            instance_id=self.instance.id,
        )
        # What an interaction's look-ups need before they can answer from memory: the catalogue, and the
        # server's and member's stored state when the database is on the network.
        self.lookups = LookupGate(self.catalogue, StorageReadiness(self.storage), local_writes=self.storage.is_local)
        self.speech = SpeechService(
            self.unmixr,
            self.audio_cache,
            self.storage,
            self.catalogue,
            self.guard,
            operator_voice_id=settings.default_voice_id,
            metrics=self.metrics,
        )
        self.voice = VoiceSessions(self)
        self.balance_watch = LowBalanceWatch(
            self.unmixr,
            self.storage,
            threshold=settings.low_balance_characters,
            post=alert_post,
            metrics=self.metrics,
        )
        await self._start_monitoring()
        await self.load_all_extensions()
        if settings.user_installs:
            # Registered by the next `python -m bot sync` (global commands carry install types, guild ones do not).
            opened = open_to_user_installs(self.tree)
            log.info("user installs on: %s also work from users' own accounts", ", ".join(opened))
        if settings.dev_guild_id is not None:
            guild = discord.Object(settings.dev_guild_id)
            self.tree.copy_global_to(guild=guild)
            synced = await self.tree.sync(guild=guild)
            self.command_ids.learn(synced, settings.dev_guild_id)
            commands_synced = counted(len(synced), "{count} command", "{count} commands")
            log.info("synced %s to the development server %s", commands_synced, settings.dev_guild_id)
        # Scanned now, not at the first request: the cache's size is known (and a crash's leftovers cleared) at once.
        self.spawn(self.audio_cache.load(), name="audio-cache-scan")
        self.spawn(self._forget_message_audio(), name="message-audio-expiry")
        self.spawn(self._keep_catalogue_fresh(), name="catalogue-refresh")
        self.spawn(self.balance_watch.run(), name="low-balance-watch")
        self.spawn(self._compact_usage(), name="usage-compaction")
        self.spawn(self.instance.run(), name="process-heartbeat")
        if shared is not None:
            self.spawn(shared.run(), name="shared-audio-upkeep")
        self.spawn(self.clones.run(), name="awaited-clones")
        self.spawn(self._learn_command_ids(), name="command-ids")

    async def _learn_command_ids(self) -> None:
        # One request at start: the global commands' ids, so replies can mention them (`</join:id>`).
        try:
            self.command_ids.learn(await self.tree.fetch_commands())
        except discord.HTTPException as error:
            log.warning("could not read the registered commands (replies name them without mentions): %s", error)

    def remember_guild_locale(self, interaction: discord.Interaction[Any]) -> None:
        """Note the server's preferred locale an interaction carries."""
        if interaction.guild_id is not None and interaction.guild_locale is not None:
            self._guild_locales[interaction.guild_id] = interaction.guild_locale.value

    def guild_locale(self, guild: discord.Guild | None) -> str | None:
        """A server's preferred locale: as its interactions last said, else as the gateway said, if known."""
        if guild is None:
            return None
        remembered = self._guild_locales.get(guild.id)
        if remembered is not None:
            return remembered
        return guild.preferred_locale.value if guild.preferred_locale is not None else None

    async def _start_monitoring(self) -> None:
        """Feed the state gauges, and serve /healthz and /metrics when METRICS_PORT is set."""
        metrics = self.metrics
        metrics.upstream_concurrency.set(self.unmixr.limiter.limit)
        self.unmixr.limiter.on_change = metrics.upstream_concurrency.set
        metrics.guilds.set_function(lambda: len(self.guilds))
        metrics.voice_connections.set_function(lambda: len(self.voice_clients))
        metrics.audio_cache_bytes.labels(tier="local").set_function(lambda: self.audio_cache.total_bytes)
        metrics.before_scrape(lambda: metrics.latencies(dict(self.latencies)))
        if self.settings.metrics_port is not None:
            self.monitoring = MonitoringServer(
                self, metrics, host=self.settings.metrics_host, port=self.settings.metrics_port
            )
            await self.monitoring.start()

    def dispatch(self, event_name: str, /, *args: Any, **kwargs: Any) -> None:
        """Handle the two events every interaction brings without a task each, then dispatch as discord.py does.

        discord.py starts a task for each `on_<event>` method at every event: for every command, one for
        `interaction` (which only presses on controls need) and one for `app_command_completion` (a few
        counter increments). Both are done here instead; listeners added with `add_listener` still get theirs.
        """
        if event_name == "interaction" and args[0].type is discord.InteractionType.component:
            self.spawn(self.answer_stale_controls(args[0]), name="stale-controls")
        elif event_name == "app_command_completion":
            # A command that finished without an error (failures are counted by the tree's error path).
            interaction, command = args
            record_command(self.metrics, interaction, command.qualified_name, "ok")
        super().dispatch(event_name, *args, **kwargs)

    async def load_all_extensions(self) -> None:
        """Load every module of `cogs/`; one that fails is logged and the others still load."""
        for module in pkgutil.iter_modules(cogs.__path__, prefix="cogs."):
            if module.name.rsplit(".", 1)[-1].startswith("_"):
                continue
            try:
                await self.load_extension(module.name)
            except commands.ExtensionError as error:
                self.failed_extensions[module.name] = error
                log.error("could not load extension %s", module.name, exc_info=error.__cause__ or error)

    @property
    def held_shards(self) -> tuple[int, ...]:
        """The shards this process runs (SHARD_IDS, else all of them once the shard count is known)."""
        if self.shard_ids is not None:
            return tuple(self.shard_ids)
        return tuple(range(self.shard_count or 0))

    def describe_shards(self) -> str:
        """Which shards this process runs, for the log."""
        shards = self.held_shards
        listed = ", ".join(str(shard) for shard in shards) if shards else "none yet"
        return f"shard{'s' if len(shards) != 1 else ''} {listed} of {self.shard_count or '?'}"

    async def claim_shards(self) -> bool:
        """With PostgreSQL, wait until this process holds the lease of every shard it runs (before connecting).

        Returns False when the bot was stopped meanwhile. Without SHARD_COUNT the count is Discord's
        recommendation, asked for here rather than when the shards launch.
        """
        if not self.instance.leases:
            return True
        if self.shard_count is None:
            self.shard_count, _url, _limits = await self.http.get_bot_gateway()
        self._claiming = asyncio.ensure_future(self.instance.claim(self.held_shards, self.shard_count))
        try:
            await self._claiming
        except asyncio.CancelledError:
            if self.shutting_down:
                return False
            raise
        finally:
            self._claiming = None
        return not self.shutting_down

    async def before_identify_hook(self, shard_id: int | None, *, initial: bool = False) -> None:
        """Note that the gateway answered (identifying follows its Hello), make sure this process still holds the
        shard's lease, then pace identifies as discord.py does."""
        self.gateway_answered.set()
        if shard_id is not None and self.instance.leases and shard_id not in self.instance.shards:
            await self.instance.wait_for_lease(shard_id)
        await super().before_identify_hook(shard_id, initial=initial)

    async def _lease_lost(self, shard_id: int) -> None:
        """Another process runs the shard now: stop it here (voice sessions stay recorded), then wait to run it."""
        shard = self.get_shard(shard_id)
        for guild in list(self.guilds):
            if guild.shard_id == shard_id and guild.id in self.voice.players:
                await self.voice.leave(guild.id, reason="the shard moved to another process", forget=False)
        if shard is not None:
            await shard.disconnect()
        await self.instance.wait_for_lease(shard_id)
        if shard is not None and not self.shutting_down:
            await shard.connect()

    async def on_ready(self) -> None:
        """Say which shards this process runs, once every one of them is connected."""
        servers = counted(len(self.guilds), "{count} server", "{count} servers")
        log.info("connected: this process runs %s, %s", self.describe_shards(), servers)

    async def on_shard_connect(self, shard_id: int) -> None:
        """A shard started a new gateway session (READY, not a resume): drop the cached state of its servers.

        Another process may have held the shard while this one had no session (a deployment's processes
        overlapping, say) and changed those servers' settings in the shared database. At READY, before any of
        the new session's interactions, so none is answered from what was cached before.
        """
        count = self.shard_count or 1
        dropped = self.storage.forget_guilds(lambda guild_id: (guild_id >> 22) % count == shard_id)
        if dropped:
            log.info("shard %d has a new session: dropped %d cached entries of its servers", shard_id, dropped)

    def spawn(self, coroutine: Coroutine[Any, Any, Any], *, name: str) -> asyncio.Task[Any]:
        """Run a background task that is kept, and whose failure is logged."""
        task = asyncio.get_running_loop().create_task(coroutine, name=name)
        self.background_tasks.add(task)
        task.add_done_callback(self._background_done)
        return task

    def _background_done(self, task: asyncio.Task[Any]) -> None:
        self.background_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("background task %s failed", task.get_name(), exc_info=task.exception())

    def track_interaction(self) -> None:
        """Remember the current task as an interaction being answered, so shutdown can wait for it."""
        task = asyncio.current_task()
        if task is not None and task not in self.inflight:
            self.inflight.add(task)
            task.add_done_callback(self.inflight.discard)

    async def answer_stale_controls(self, interaction: discord.Interaction[Any]) -> None:
        """Answer a press on controls nobody handles any more (a view from before a restart, or timed out)."""
        taken = view_takes(interaction)
        if taken:
            return
        if taken is None:
            await asyncio.sleep(STALE_CONTROL_GRACE_SECONDS)
            if interaction.response.is_done():
                return
        try:
            await answer(interaction, _("These controls have expired; run the command again."), ephemeral=True)
        except discord.HTTPException:
            log.debug("a live view answered interaction %s meanwhile", interaction.id)

    async def on_guild_available(self, guild: discord.Guild) -> None:
        """Read the server's clones into memory now, so voice autocomplete offers them from the first keystroke."""
        self.catalogue.warm(guild.id)

    async def on_guild_join(self, guild: discord.Guild) -> None:
        """A new server: the same as one becoming available."""
        self.catalogue.warm(guild.id)

    async def _keep_catalogue_fresh(self) -> None:
        # Loading at start makes the first /say fast; failures are retried on the next round.
        while True:
            try:
                await self.catalogue.refresh()
            except Exception as error:
                # An Unmixr outage or a refused key is logged by the client, once a minute, with its address.
                quiet = isinstance(error, UnmixrError) and error.logged_by_client
                log.log(logging.DEBUG if quiet else logging.WARNING, "voice catalogue refresh failed: %s", error)
                await asyncio.sleep(60)
                continue
            await asyncio.sleep(REFRESH_SECONDS)

    async def _post_alert(self, message: Message) -> None:
        # A partial channel needs no cache: the alert channel may belong to a server of another shard. It is
        # written in its server's language when this process knows the server.
        channel_id = self.settings.alert_channel_id
        assert channel_id is not None
        known = self.get_channel(channel_id)
        guild = getattr(known, "guild", None)
        text = message if isinstance(message, str) else message.render(language(self.guild_locale(guild)))
        await post(self.get_partial_messageable(channel_id), text)

    async def _forget_message_audio(self) -> None:
        # Privacy (PRODUCT.md): the audio of members' messages stays in the cache at most 24 hours.
        while True:
            await asyncio.sleep(REMOVE_EXPIRED_SECONDS)
            try:
                await self.audio_cache.remove_expired()
            except OSError as error:
                log.warning("could not remove expired message audio from the cache: %s", error)

    async def _compact_usage(self) -> None:
        # Budgets read only today and the last hour: older days shrink to one ledger row per server.
        while True:
            yesterday = discord.utils.utcnow().date() - timedelta(days=1)
            try:
                removed = await self.storage.compact_usage(yesterday)
            except Exception:
                log.exception("compacting the usage ledger failed")
            else:
                if removed:
                    log.info("compacted %d usage rows from before %s", removed, yesterday)
            await asyncio.sleep(COMPACT_SECONDS)

    async def close(self) -> None:
        """Let in-flight answers finish, disconnect, then close every resource in reverse order."""
        if self.shutting_down:
            await super().close()
            return
        self.shutting_down = True
        if self._claiming is not None:
            self._claiming.cancel()
        current = asyncio.current_task()
        waiting = [task for task in self.inflight if task is not current and not task.done()]
        if waiting:
            log.info("waiting for %d interactions to finish", len(waiting))
            await asyncio.wait(waiting, timeout=SHUTDOWN_GRACE_SECONDS)
        await self.close_extras()
        if self.monitoring is not None:
            await self.monitoring.close()
        await super().close()
        for task in list(self.background_tasks):
            task.cancel()
        if self.background_tasks:
            await asyncio.wait(list(self.background_tasks), timeout=5)
        if hasattr(self, "guard"):
            # Holds of clips never sent are given back; chunks still at Unmixr count as spent.
            await self.guard.close()
        if hasattr(self, "audio_cache"):
            await self.audio_cache.flush()
        if hasattr(self, "catalogue"):
            await self.catalogue.close()
        if hasattr(self, "instance"):
            try:
                await self.instance.stop()
            except Exception as error:
                log.warning("could not retire this process's record: %s", error)
        if hasattr(self, "storage"):
            await self.storage.close()
        if hasattr(self, "session"):
            await self.session.close()

    async def close_extras(self) -> None:
        """Hook for extensions' own cleanup before the gateway closes (voice players)."""
        for cog in list(self.cogs.values()):
            closer = getattr(cog, "shutdown", None)
            if closer is not None:
                try:
                    await closer()
                except Exception:
                    log.exception("shutdown of %s failed", type(cog).__name__)
