"""Create-profile and unlock flows, against a launcher that plays the profile."""

from __future__ import annotations

from textual.widgets import Button, Input

from p2pmsg.ui.app import P2PMsgApp
from p2pmsg.ui.screens.main import MainScreen
from p2pmsg.ui.screens.unlock import UnlockScreen
from p2pmsg.ui.widgets.password_rules import PasswordRules
from tests.ui.conftest import FIXED_CLOCK, FakeLauncher, screen_text, settle
from tests.ui.fake_node import FakeNode


async def test_create_profile_checks_policy_live_then_opens_main(node: FakeNode) -> None:
    launcher = FakeLauncher(node, exists=False)
    app = P2PMsgApp(launcher, clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        submit = app.screen.query_one("#submit", Button)
        assert submit.disabled
        await pilot.click("#display-name")
        await pilot.press(*"alice")
        await pilot.click("#password")
        await pilot.press(*"alice")
        await settle(pilot, 0.05)
        rules = str(app.screen.query_one(PasswordRules).render())
        assert "✗ at least 12 characters" in rules
        assert "✗ not your display name" in rules
        assert "strength: weak" in rules
        assert submit.disabled
        app.screen.query_one("#password", Input).value = "correct horse battery staple"
        app.screen.query_one("#confirm", Input).value = "correct horse battery staple"
        await settle(pilot, 0.05)
        rules = str(app.screen.query_one(PasswordRules).render())
        assert "✗" not in rules and "✓ at least 12 characters" in rules
        assert "✓ both passwords match" in rules
        assert not submit.disabled
        await pilot.click("#submit")
        await settle(pilot, 0.3)
        assert launcher.created == [("alice", "correct horse battery staple")]
        assert isinstance(app.screen, MainScreen)
        assert node.started


async def test_mismatched_confirmation_keeps_create_disabled(node: FakeNode) -> None:
    app = P2PMsgApp(FakeLauncher(node, exists=False), clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        app.screen.query_one("#display-name", Input).value = "alice"
        app.screen.query_one("#password", Input).value = "correct horse battery staple"
        app.screen.query_one("#confirm", Input).value = "correct horse battery stapl"
        await settle(pilot, 0.05)
        assert "✗ both passwords match" in str(app.screen.query_one(PasswordRules).render())
        assert app.screen.query_one("#submit", Button).disabled


async def test_unlock_wrong_then_right(node: FakeNode) -> None:
    app = P2PMsgApp(FakeLauncher(node), clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*"guess", "enter")
        await settle(pilot, 0.2)
        assert isinstance(app.screen, UnlockScreen)
        assert "Wrong password." in screen_text(app)
        app.screen.query_one("#password", Input).value = "correct horse battery staple"
        await pilot.press("enter")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, MainScreen)


async def test_backoff_is_a_live_countdown_that_blocks_the_form(node: FakeNode) -> None:
    launcher = FakeLauncher(node, throttle_after=1, retry_after=1.0)
    app = P2PMsgApp(launcher, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        await pilot.press(*"guess", "enter")
        await settle(pilot, 0.2)
        await pilot.press(*"guess2", "enter")
        await settle(pilot, 0.2)
        assert "Too many failed attempts. Try again in 1 s." in screen_text(app)
        assert app.screen.query_one("#password", Input).disabled
        await pilot.pause(1.1)
        await settle(pilot, 0.3)
        assert "You can try again now." in screen_text(app)
        password = app.screen.query_one("#password", Input)
        assert not password.disabled
        password.value = "correct horse battery staple"
        await pilot.press("enter")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, MainScreen)


async def test_preset_password_skips_the_prompt(node: FakeNode) -> None:
    launcher = FakeLauncher(node, preset="correct horse battery staple")
    app = P2PMsgApp(launcher, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.3)
        assert isinstance(app.screen, MainScreen)


async def test_wrong_preset_password_falls_back_to_the_prompt(node: FakeNode) -> None:
    app = P2PMsgApp(FakeLauncher(node, preset="stale"), clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot, 0.3)
        assert isinstance(app.screen, UnlockScreen)
        status = str(app.screen.query_one("#unlock-status").render())
        assert status == "Wrong password (from P2PMSG_PASSWORD / --password-file)."
        assert app.screen.query_one("#password", Input).has_focus


async def test_a_profile_in_use_is_said_before_the_password_is_typed(node: FakeNode) -> None:
    launcher = FakeLauncher(node, held_by="p2pmsg listen (pid 4242)")
    app = P2PMsgApp(launcher, clock=FIXED_CLOCK)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(pilot)
        assert isinstance(app.screen, UnlockScreen)
        status = str(app.screen.query_one("#unlock-status").render())
        assert "in use by p2pmsg listen (pid 4242)" in status
        assert "Quit it first, or use another profile (p2pmsg --profile NAME)." in status
        launcher.held_by = None  # the other process quit: unlocking now works
        app.screen.query_one("#password", Input).value = launcher.password
        await pilot.click("#submit")
        await settle(pilot, 0.3)
        assert isinstance(app.screen, MainScreen)


async def test_the_rules_reminder_goes_once_every_rule_is_met(node: FakeNode) -> None:
    app = P2PMsgApp(FakeLauncher(node, exists=False), clock=FIXED_CLOCK)
    async with app.run_test(size=(100, 34)) as pilot:
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, UnlockScreen)
        screen.query_one("#display-name", Input).value = "alice"
        screen.query_one("#confirm", Input).focus()
        await pilot.press("enter")  # submitted too early
        await settle(pilot, 0.05)
        assert "Meet every rule above first." in screen_text(app)
        screen.query_one("#password", Input).value = "correct horse battery staple"
        screen.query_one("#confirm", Input).value = "correct horse battery staple"
        await settle(pilot, 0.05)
        assert "Meet every rule above first." not in screen_text(app)
