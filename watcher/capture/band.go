package capture

import (
	"bytes"
	"fmt"
	"image"
	"image/color"
	"image/draw"
	"image/png"

	"golang.org/x/image/font"
	"golang.org/x/image/font/basicfont"
	"golang.org/x/image/math/fixed"
)

// Band colours: light text on a dark band, which no page's own top can be mistaken for.
var (
	bandBackground = color.RGBA{R: 0x1f, G: 0x23, B: 0x28, A: 0xff}
	bandText       = color.RGBA{R: 0xff, G: 0xd8, B: 0x4d, A: 0xff}
)

const (
	bandLineHeight = 16
	bandPadding    = 6
	// minBandWidth keeps the band readable above a narrow (mobile) screenshot.
	minBandWidth = 640
	// maxShotPixels bounds what is decoded: a hostile page cannot make a bigger image than
	// the renderer's clip allows, but a corrupt PNG header could claim one.
	maxShotPixels = 4096 * 8192
)

// BandHeight is the height of the band for lines of text.
func BandHeight(lines int) int { return lines*bandLineHeight + 2*bandPadding }

// WithBand returns the screenshot with a band above it that states what it shows: the URL,
// the UTC time and the address it was served from. The band is part of the image, so a copy
// of the picture carries its provenance.
func WithBand(shot []byte, lines []string) ([]byte, error) {
	cfg, err := png.DecodeConfig(bytes.NewReader(shot))
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	if cfg.Width <= 0 || cfg.Height <= 0 || cfg.Width*cfg.Height > maxShotPixels {
		return nil, fmt.Errorf("screenshot: %dx%d pixels is out of bounds", cfg.Width, cfg.Height)
	}
	page, err := png.Decode(bytes.NewReader(shot))
	if err != nil {
		return nil, fmt.Errorf("screenshot: %w", err)
	}
	bh := BandHeight(len(lines))
	w := max(page.Bounds().Dx(), minBandWidth)
	out := image.NewRGBA(image.Rect(0, 0, w, bh+page.Bounds().Dy()))
	draw.Draw(out, out.Bounds(), &image.Uniform{C: color.White}, image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(0, 0, w, bh), &image.Uniform{C: bandBackground}, image.Point{}, draw.Src)
	draw.Draw(out, image.Rect(0, bh, page.Bounds().Dx(), out.Bounds().Dy()), page, page.Bounds().Min, draw.Src)
	face := basicfont.Face7x13
	maxChars := (w - 2*bandPadding) / 7
	d := &font.Drawer{Dst: out, Src: &image.Uniform{C: bandText}, Face: face}
	for i, line := range lines {
		line = asciiOnly(line)
		if len(line) > maxChars {
			line = line[:max(maxChars-3, 0)] + "..."
		}
		d.Dot = fixed.P(bandPadding, bandPadding+(i+1)*bandLineHeight-4)
		d.DrawString(line)
	}
	var b bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.BestSpeed}).Encode(&b, out); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// asciiOnly keeps what the band's font can draw: a host name in another script is shown in
// its ASCII (punycode) form by the caller, and anything else becomes '?'.
func asciiOnly(s string) string {
	b := []byte(s)
	out := b[:0]
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			out = append(out, '?')
			continue
		}
		out = append(out, byte(r))
	}
	return string(out)
}
