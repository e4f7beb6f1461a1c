//! 5-point similarity alignment onto the 112×112 ArcFace/SFace template.
