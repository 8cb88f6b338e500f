"""Models: the one ViT file (ecogen.models.vit), its checkpoints, and its export for serving."""
