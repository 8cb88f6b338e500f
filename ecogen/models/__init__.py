"""Models: the one ViT file (ecogen.models.vit)."""
