"""The images the workshop runs, made offline when Docker Hub is out of reach."""
