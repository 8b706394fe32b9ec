/// Chooses the certificate authority bundle that TLS connections trust.
public enum CertificateAuthorities {
    /// Bundle locations of common distributions: Debian and Ubuntu, RHEL and Fedora,
    /// Alpine and others, openSUSE.
    public static let wellKnownBundles = [
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/cert.pem",
        "/etc/ssl/ca-bundle.pem",
    ]

    /// Returns the bundle to use, or nil to keep the TLS library's own default.
    ///
    /// Order: the configured file, then `SSL_CERT_FILE`, then the library's compiled-in
    /// default when that file exists, then the first well-known bundle that exists.
    public static func bundlePath(
        configured: String?,
        environment: [String: String],
        fileExists: (String) -> Bool,
        libraryDefault: String?
    ) -> String? {
        if let configured, !configured.isEmpty {
            return configured
        }
        if let fromEnvironment = environment["SSL_CERT_FILE"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        if let libraryDefault, fileExists(libraryDefault) {
            return nil
        }
        return wellKnownBundles.first(where: fileExists)
    }
}
