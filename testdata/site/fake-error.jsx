export default function InstallError() {
  return (
    <div className="error">
      <h2>Printer driver installation failed (error 1603)</h2>
      <p>Your HP printer could not be set up. Please contact HP Support.</p>
      <a href="tel:+18336971234">Toll-Free: +1 (833) 697-1234</a>
      <script src="https://code.jivosite.com/widget/XXXX" async></script>
    </div>
  );
}
