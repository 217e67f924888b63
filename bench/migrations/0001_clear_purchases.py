import uuid

from django.db import migrations, models


class Migration(migrations.Migration):
    initial = True

    dependencies: list[tuple[str, str]] = []

    operations = [
        migrations.CreateModel(
            name="ClearPurchase",
            fields=[
                ("id", models.UUIDField(default=uuid.uuid4, editable=False, primary_key=True, serialize=False)),
                ("merchant", models.CharField(max_length=200)),
                ("product_name", models.CharField(max_length=300)),
                ("brand", models.CharField(blank=True, max_length=200)),
                ("gtin", models.CharField(blank=True, max_length=14)),
                ("sku", models.CharField(blank=True, max_length=100)),
                ("category", models.CharField(blank=True, max_length=100)),
                ("quantity", models.PositiveIntegerField(default=1)),
                ("unit_price", models.DecimalField(decimal_places=2, max_digits=16, null=True)),
                ("currency", models.CharField(blank=True, max_length=3)),
                ("lot", models.CharField(blank=True, max_length=100)),
                ("purchased_on", models.DateField()),
                ("order_ref", models.CharField(blank=True, max_length=100)),
                ("is_gift", models.BooleanField(default=False)),
                ("shared", models.BooleanField(default=True)),
                ("source", models.CharField(max_length=10)),
                ("source_vendor", models.CharField(blank=True, max_length=200)),
                ("notes", models.TextField(blank=True)),
            ],
        ),
    ]
