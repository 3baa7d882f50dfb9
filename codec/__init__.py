"""MISC: ultra-low-bitrate semantic image compression driven by large multimodal models.

    image ──describe──▶ items, details, paragraph ──text coder──▶ TEXT section
      │   ──CLIP Surgery──▶ one coarse grid per item ──grid coder──▶ MAPS section
      └── downsample ──▶ AV1 intra (rate control fills what is left) ──▶ PIXEL section
                                   header + sections + CRC32 = the .misc file

    file ──▶ pixel layer + text + maps ──decoder (diffusion | restoration | bicubic)──▶ image
"""
