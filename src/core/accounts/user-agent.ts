/**
 * A person-readable name for the browser behind a User-Agent header ("Firefox on Linux"),
 * for the lists of sessions. Only a summary is kept: the full header is a fingerprint, and
 * people recognise their devices by browser and system, as in Keycloak's and Google's lists.
 */
export function browserSummary(userAgent: string | undefined): string | null {
  if (!userAgent) return null;
  const ua = userAgent.slice(0, 512);
  const browser =
    /\bEdg(?:e|A|iOS)?\//.test(ua) ? 'Edge'
    : /\b(?:OPR|Opera)\//.test(ua) ? 'Opera'
    : /\b(?:Firefox|FxiOS)\//.test(ua) ? 'Firefox'
    : /\bSamsungBrowser\//.test(ua) ? 'Samsung Internet'
    : /\bHeadlessChrome\//.test(ua) ? 'Headless Chrome'
    : /\b(?:Chrome|CriOS|Chromium)\//.test(ua) ? 'Chrome'
    : /\bVersion\/[\d.]+.*\bSafari\//.test(ua) ? 'Safari'
    : /^curl\//.test(ua) ? 'curl'
    : /^node|undici/i.test(ua) ? 'Node.js'
    : null;
  const system =
    /\b(?:iPhone|iPad|iPod)\b/.test(ua) ? 'iOS'
    : /\bAndroid\b/.test(ua) ? 'Android'
    : /\bCrOS\b/.test(ua) ? 'ChromeOS'
    : /\bWindows\b/.test(ua) ? 'Windows'
    : /\bMac OS X\b|\bMacintosh\b/.test(ua) ? 'macOS'
    : /\bLinux\b/.test(ua) ? 'Linux'
    : null;
  if (browser && system) return `${browser} on ${system}`;
  return browser ?? system ?? 'Unknown browser';
}
