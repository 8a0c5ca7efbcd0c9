"""Seed ModelPrice from ../shared/reference/pricing/anthropic_pricing_notes.txt (USD per MTok).

Rows are copied from Anthropic's published tables (sources A/B/C in the notes), one row per
model family; dated ids (claude-sonnet-4-5-20250929), "-latest" and "-0" aliases resolve to the
family. Left out on purpose, because the notes do not verify every price a call can incur:
  * claude-opus-5-5, claude-sonnet-5-5, claude-haiku-5-5: only input/output are quoted (Haiku 5.5
    only "from"); cache writes are not quoted and the 0.05x cache read is third-party only.
  * claude-sonnet-5, claude-fable-5-2, claude-mythos-5-2, claude-mythos-preview, and Claude 3
    Sonnet (claude-3-sonnet-20240229): not in the published excerpts.
  * Sonnet 4's >200K long-context rates (1M-context beta) and the US-only 1.1x premium.
Staff add these in Django admin when the prices are known; until then calls are refused.
"""

from datetime import UTC, datetime
from decimal import Decimal

from django.db import migrations

A = "Anthropic pricing page, archived ~Aug-Sep 2025 (notes source A)"
B = "Anthropic pricing page (zh-CN), archived ~Feb-Mar 2026 (notes source B)"
C = "Anthropic pricing page, archived ~mid/late 2026 (notes source C)"

# family, display name, base input, 5m cache write, 1h cache write, cache read, output, source
PRICES = [
    ("claude-fable-5-1", "Claude Fable 5.1", "10", "12.50", "20", "0.25", "50", C),
    ("claude-mythos-5-1", "Claude Mythos 5.1", "10", "12.50", "20", "0.25", "50", C),
    ("claude-fable-5", "Claude Fable 5", "10", "12.50", "20", "1", "50", C),
    ("claude-mythos-5", "Claude Mythos 5", "10", "12.50", "20", "1", "50", C),
    ("claude-opus-5", "Claude Opus 5", "5", "6.25", "10", "0.50", "25", C),
    ("claude-opus-4-8", "Claude Opus 4.8", "5", "6.25", "10", "0.50", "25", C),
    ("claude-opus-4-7", "Claude Opus 4.7", "5", "6.25", "10", "0.50", "25", C),
    ("claude-opus-4-6", "Claude Opus 4.6", "5", "6.25", "10", "0.50", "25", B + "; " + C),
    ("claude-opus-4-5", "Claude Opus 4.5", "5", "6.25", "10", "0.50", "25", B + "; " + C),
    ("claude-opus-4-1", "Claude Opus 4.1", "15", "18.75", "30", "1.50", "75", A + "; " + B + "; " + C),
    ("claude-opus-4", "Claude Opus 4", "15", "18.75", "30", "1.50", "75", A + "; " + B),
    ("claude-sonnet-4-6", "Claude Sonnet 4.6", "3", "3.75", "6", "0.30", "15", B),
    ("claude-sonnet-4-5", "Claude Sonnet 4.5", "3", "3.75", "6", "0.30", "15", B),
    ("claude-sonnet-4", "Claude Sonnet 4", "3", "3.75", "6", "0.30", "15", A + "; " + B),
    ("claude-3-7-sonnet", "Claude Sonnet 3.7", "3", "3.75", "6", "0.30", "15", A + "; " + B),
    ("claude-3-5-sonnet", "Claude Sonnet 3.5", "3", "3.75", "6", "0.30", "15", A),
    ("claude-haiku-4-5", "Claude Haiku 4.5", "1", "1.25", "2", "0.10", "5", B),
    ("claude-3-5-haiku", "Claude Haiku 3.5", "0.80", "1", "1.6", "0.08", "4", A + "; " + B),
    ("claude-3-opus", "Claude Opus 3", "15", "18.75", "30", "1.50", "75", A + "; " + B),
    # Published rounded: 5m write $0.30 (not 1.25x = $0.3125), cache read $0.03 (not $0.025).
    ("claude-3-haiku", "Claude Haiku 3", "0.25", "0.30", "0.50", "0.03", "1.25", A + "; " + B),
]
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)


def seed(apps, schema_editor):
    ModelPrice = apps.get_model("budgets", "ModelPrice")
    for model, name, inp, w5, w1h, read, out, source in PRICES:
        ModelPrice.objects.get_or_create(
            model=model, effective_from=EPOCH,
            defaults=dict(
                display_name=name, input=Decimal(inp), cache_write_5m=Decimal(w5), cache_write_1h=Decimal(w1h),
                cache_read=Decimal(read), output=Decimal(out), source=source,
            ),
        )


def unseed(apps, schema_editor):
    apps.get_model("budgets", "ModelPrice").objects.filter(model__in=[p[0] for p in PRICES], effective_from=EPOCH).delete()


class Migration(migrations.Migration):
    dependencies = [("budgets", "0001_initial")]
    operations = [migrations.RunPython(seed, unseed)]
