"""The catalog: products and SKUs as channels see them."""
