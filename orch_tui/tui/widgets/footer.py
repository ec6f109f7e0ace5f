"""The footer: Textual's, showing only keys that fit whole.

Textual's footer cuts the key that reaches its edge mid-word: at 80 columns the run screen's
ended `P All m`, a key without its label. This one hides that key and every one after it (they
stay in `?` and the palette), after each layout of its keys and each change of its width.
"""

from __future__ import annotations

from textual import events
from textual.widgets import Footer
from textual.widgets._footer import FooterKey  # not exported: the keys a Footer holds


class FittedFooter(Footer):
    """A footer whose last key is never cut: the keys that would not fit whole are hidden."""

    async def recompose(self) -> None:
        """New keys (the screen's bindings changed): fit them once laid out."""
        await super().recompose()
        self.call_after_refresh(self._fit)

    def on_resize(self, event: events.Resize) -> None:
        """Another width: lay every key out again, then fit."""
        del event
        for key in self.query(FooterKey):
            key.display = True
        self.call_after_refresh(self._fit)

    def _fit(self) -> None:
        keys = [key for key in self.query(FooterKey) if not key.has_class("-command-palette")]
        palette = [key for key in self.query(FooterKey) if key.has_class("-command-palette")]
        edge = palette[0].region.x if palette and palette[0].display else self.region.right
        cut = False
        for key in keys:
            cut = cut or key.region.right > edge
            if cut:
                key.display = False
