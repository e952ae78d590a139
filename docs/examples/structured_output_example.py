"""Structured output: a validated object instead of text."""

from __future__ import annotations

import msgspec

import claude_unified as cu


class Invoice(msgspec.Struct):
    number: str
    total: float


async def main(config: cu.Config) -> Invoice:
    async with cu.Conversation(config) as conv:
        reply = await conv.ask("Extract the invoice: INV-7, 12.50 EUR", output=Invoice)
    assert reply.output is not None
    try:
        await cu.query("Extract it again", config=config, output=Invoice)
    except cu.OutputValidationError as exc:
        print("not an invoice:", exc.raw_text, exc.errors)
    return reply.output
