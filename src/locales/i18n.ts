/**
 * Languages of the pages a person sees (login, consent, device, logout, error, the account
 * center); the admin pages stay English. A page speaks the first supported language of the
 * request's `ui_locales` (OIDC Core 3.1.2.1), else the best one of the browser's
 * Accept-Language, else English.
 */
export const SUPPORTED_LOCALES = ['en', 'fr'] as const;
export type Locale = (typeof SUPPORTED_LOCALES)[number];
export const DEFAULT_LOCALE: Locale = 'en';

// Messages may hold {placeholders}. English must stay word for word what the pages said
// before translation: relying parties and tests match on it.
const EN = {
  'login.title': 'Sign in',
  'login.lead': 'to continue to {client}',
  'login.username': 'Username or email',
  'login.password': 'Password',
  'login.submit': 'Sign in',
  'login.forgot': 'Forgot your password?',
  'login.invalid': 'Invalid username or password.',
  'login.locked.one': 'Too many failed sign-in attempts. Try again in {minutes} minute.',
  'login.locked.other': 'Too many failed sign-in attempts. Try again in {minutes} minutes.',
  'twoFactor.title': 'Two-step verification',
  'twoFactor.lead': 'Enter the 6-digit code from your authenticator app to continue to {client}.',
  'twoFactor.code': 'Verification code',
  'twoFactor.hint': 'No access to your app? Enter one of your recovery codes instead.',
  'twoFactor.submit': 'Verify',
  'twoFactor.invalid': 'That code is not valid. Enter the current code from your app, or an unused recovery code.',
  'twoFactor.restart': 'This sign-in took too long. Please sign in again.',
  'form.expired': 'This form has expired. Please try again.',
  'interaction.expired.title': 'Sign-in expired',
  'interaction.expired.description':
    'This sign-in request has expired or was started in another browser. Go back to the application and start again.',
  'consent.title': 'Allow access',
  'consent.heading': 'Allow access?',
  'consent.lead': '{client} would like to:',
  'consent.claims': 'It also asks for these details: {claims}.',
  'consent.deny': 'Deny',
  'consent.api': 'Use {api} on your behalf',
  'consent.allow': 'Allow',
  'scope.openid': 'Sign you in with your Latchkey account',
  'scope.profile': 'See your name and username',
  'scope.email': 'See your email address and whether it is verified',
  'scope.offline_access': 'Stay connected while you are away (keep access after you sign out)',
  'scope.other': 'Use the "{scope}" permission',
  'scope.api.users_read': 'Read your Latchkey account details (and, if you are staff, every account)',
  'scope.api.users_write': 'Change or delete your Latchkey account (and, if you are staff, other accounts)',
  'scope.api.account': 'Manage your password, two-factor authentication, connected applications and sessions',
  'scope.api.admin': 'Administer Latchkey as you (applications, API resources, audit log), if you are staff',
  'claim.preferred_username': 'username',
  'claim.name': 'full name',
  'claim.given_name': 'first name',
  'claim.family_name': 'last name',
  'claim.updated_at': 'when your profile last changed',
  'claim.email': 'email address',
  'claim.email_verified': 'whether your email address is verified',
  'device.title': 'Connect a device',
  'device.input.lead': 'Enter the code shown on your device.',
  'device.input.placeholder': 'Enter code',
  'device.continue': 'Continue',
  'device.cancel': 'Cancel',
  'device.error.code': 'That code is not valid, or it has expired or been used. Check the code and try again.',
  'device.error.aborted': 'The sign-in was cancelled.',
  'device.error.other': 'Something went wrong. Start again on your device.',
  'device.confirm.heading': 'Connect {client}?',
  'device.confirm.lead': 'Check that the device shows this code:',
  'device.confirm.from': 'Requested from {device}',
  'device.success.title': 'Device connected',
  'device.success.lead': 'You can return to your device and close this window.',
  'device.success.leadClient': '{client} is now signed in. You can return to your device and close this window.',
  'logout.title': 'Sign out',
  'logout.heading': 'Sign out?',
  'logout.lead': 'Do you want to sign out of Latchkey?',
  'logout.leadClient': 'Do you want to sign out of Latchkey and {client}?',
  'logout.stay': 'Stay signed in',
  'logout.submit': 'Sign out',
  'loggedOut.title': 'Signed out',
  'loggedOut.lead': 'You have signed out. You can close this window.',
  'loggedOut.leadClient': 'You have signed out of {client}. You can close this window.',
  'error.title': 'Something went wrong',
  'error.code': 'Error code:',
  'account.title': 'Your account',
  'account.nav.label': 'Account',
  'account.nav.profile': 'Profile',
  'account.nav.password': 'Password',
  'account.nav.twoFactor': 'Two-factor authentication',
  'account.nav.applications': 'Applications',
  'account.nav.sessions': 'Sessions',
  'account.nav.delete': 'Delete account',
  'account.signedInAs': 'Signed in as {username}',
  'account.signOut': 'Sign out',
  'account.signedOut.title': 'Not signed in',
  'account.signedOut.lead': 'You are no longer signed in, so nothing was changed. Sign in and try again.',
  'account.signIn': 'Sign in',
  'account.fields': 'Please correct the fields marked below.',
  'account.when': '{date} UTC',
  'profile.title': 'Profile',
  'profile.username': 'Username',
  'profile.usernameHint': 'Letters, digits and @ . + - _ only.',
  'profile.name': 'Name',
  'profile.firstName': 'First name',
  'profile.lastName': 'Last name',
  'profile.email': 'Email address',
  'profile.noEmail': 'No email address',
  'profile.verified': 'Verified',
  'profile.unverified': 'Not verified',
  'profile.memberSince': 'Member since',
  'profile.lastLogin': 'Last sign-in',
  'profile.never': 'Never',
  'profile.edit': 'Edit your profile',
  'profile.emailHint': 'A new address gets a link to verify it; until then sign-in and password reset keep using the current one, which is told of the change.',
  'profile.pendingEmail': 'New address',
  'profile.pendingHint': 'waiting for verification',
  'profile.currentPasswordHint': 'Needed only to change your email address.',
  'profile.save': 'Save changes',
  'profile.resend': 'Send the verification email again',
  'profile.resendThrottled.one': 'Too many requests. Try again in {minutes} minute.',
  'profile.resendThrottled.other': 'Too many requests. Try again in {minutes} minutes.',
  'profile.nothingToVerify': 'There is no unverified email address to send a link to.',
  'password.title': 'Change password',
  'password.lead': 'You will stay signed in on this browser; every other session and application is signed out.',
  'password.current': 'Current password',
  'password.new': 'New password',
  'password.confirm': 'New password, again',
  'password.hint': 'At least 8 characters. Long passphrases are welcome; very common passwords are refused.',
  'password.submit': 'Change password',
  'password.mismatch': 'The two passwords do not match.',
  'apps.title': 'Connected applications',
  'apps.lead': 'Applications you have allowed to use your account. Revoking access signs the application out and stops its tokens at once.',
  'apps.none': 'No application has access to your account.',
  'apps.allowed': 'Allowed on {date}',
  'apps.revoke': 'Revoke access',
  'apps.notFound': 'That application is not connected to your account.',
  'sessions.title': 'Sessions',
  'sessions.lead': 'Browsers where your account is signed in.',
  'sessions.signedIn': 'Signed in on {date}',
  'sessions.expires': 'Ends on {date}',
  'sessions.thisDevice': 'This device',
  'sessions.applications': 'Applications: {applications}',
  'sessions.noApplications': 'No application yet',
  'sessions.signOut': 'Sign out',
  'sessions.signOutThis': 'Sign out of this device',
  'sessions.notFound': 'That session has already ended.',
  'delete.title': 'Delete account',
  'delete.lead': 'This deletes the account {username} for good and signs it out of every application. It cannot be undone.',
  'delete.username': 'Type your username to confirm',
  'delete.password': 'Password',
  'delete.submit': 'Delete my account',
  'delete.lastSuperuser': 'You are the last superuser: make someone else a superuser before you delete your account.',
  'deleted.title': 'Account deleted',
  'deleted.lead': 'Your account was deleted, and every session and application was signed out.',
  'notice.profileSaved': 'Your profile was saved.',
  'notice.profileSavedVerify': 'Your profile was saved. We have sent a link to your new email address to verify it.',
  'notice.verificationSent': 'We have sent a new verification link to your email address.',
  'notice.passwordChanged': 'Your password was changed. Every other session and application was signed out.',
  'notice.appRevoked': 'Access was revoked: the application can no longer use your account.',
  'notice.sessionEnded': 'That session was signed out.',
  'notice.twoFactorOff': 'Two-factor authentication is off. Signing in takes your password only.',
  'problem.code': 'The code is not valid. Use the current code of your authenticator app.',
  'problem.otpNeeded': 'This account uses two-factor authentication: enter the current code of your authenticator app (or a recovery code).',
  'tf.lead.off': 'Protect your account with a second step at sign-in: a code from an authenticator app on your phone.',
  'tf.setup': 'Set up an authenticator app',
  'tf.scan': 'Scan this QR code with your authenticator app (for example Aegis, Google Authenticator or 1Password).',
  'tf.qrAlt': 'QR code to add your account to an authenticator app',
  'tf.key': 'Or type this key into the app:',
  'tf.code': 'Code from the app',
  'tf.confirm': 'Turn on two-factor authentication',
  'tf.restart': 'Start again with a new key',
  'tf.on': 'Two-factor authentication is on since {date}.',
  'tf.remaining': 'Unused recovery codes: {count}.',
  'tf.codesTitle': 'Your recovery codes',
  'tf.codesLead': 'Each code signs you in once if you lose your phone. Save them somewhere safe now: they are not shown again.',
  'tf.regenerate': 'Make new recovery codes',
  'tf.regenerateLead': 'Your old recovery codes stop working.',
  'tf.codeOrRecovery': 'Code from the app, or a recovery code',
  'tf.disableTitle': 'Turn off two-factor authentication',
  'tf.password': 'Current password',
  'tf.disable': 'Turn off',
  'problem.required': 'This field is required.',
  'problem.usernameRequired': 'Username is required.',
  'problem.usernameLength': 'Username must be at most 150 characters.',
  'problem.usernameCharacters': 'Username may contain only letters, digits and @ . + - _ characters.',
  'problem.usernameTaken': 'A user with that username already exists.',
  'problem.emailLength': 'Email must be at most 254 characters.',
  'problem.emailInvalid': 'Enter a valid email address.',
  'problem.emailTaken': 'A user with that email already exists.',
  'problem.nameLength': 'Must be at most 150 characters.',
  'problem.passwordShort': 'Password must be at least {min} characters.',
  'problem.passwordLong': 'Password must be at most {max} characters.',
  'problem.passwordCommon': 'This password is too common; choose one that is harder to guess.',
  'problem.passwordSame': 'The new password must differ from the current one.',
  'problem.currentPassword': 'The current password is not correct.',
  'problem.password': 'The password is not correct.',
  'problem.confirmUsername': 'Type your username exactly as shown.',
} as const;

export type MessageKey = keyof typeof EN;

// French typography wants a no-break space before ? : ! (written \u00a0).
const FR: Record<MessageKey, string> = {
  'login.title': 'Se connecter',
  'login.lead': 'pour continuer vers {client}',
  'login.username': 'Nom d’utilisateur ou adresse e-mail',
  'login.password': 'Mot de passe',
  'login.submit': 'Se connecter',
  'login.forgot': 'Mot de passe oublié\u00a0?',
  'login.invalid': 'Nom d’utilisateur ou mot de passe incorrect.',
  'login.locked.one': 'Trop de tentatives de connexion échouées. Réessayez dans {minutes} minute.',
  'login.locked.other': 'Trop de tentatives de connexion échouées. Réessayez dans {minutes} minutes.',
  'twoFactor.title': 'Validation en deux étapes',
  'twoFactor.lead': 'Saisissez le code à 6 chiffres de votre application d’authentification pour continuer vers {client}.',
  'twoFactor.code': 'Code de vérification',
  'twoFactor.hint': 'Pas d’accès à votre application\u00a0? Saisissez plutôt l’un de vos codes de récupération.',
  'twoFactor.submit': 'Valider',
  'twoFactor.invalid': 'Ce code n’est pas valide. Saisissez le code actuel de votre application, ou un code de récupération inutilisé.',
  'twoFactor.restart': 'Cette connexion a pris trop de temps. Veuillez vous reconnecter.',
  'form.expired': 'Ce formulaire a expiré. Veuillez réessayer.',
  'interaction.expired.title': 'Connexion expirée',
  'interaction.expired.description':
    'Cette demande de connexion a expiré ou a été commencée dans un autre navigateur. Revenez à l’application et recommencez.',
  'consent.title': 'Autoriser l’accès',
  'consent.heading': 'Autoriser l’accès\u00a0?',
  'consent.lead': '{client} souhaite\u00a0:',
  'consent.claims': 'L’application demande aussi ces informations\u00a0: {claims}.',
  'consent.deny': 'Refuser',
  'consent.api': 'Utiliser {api} en votre nom',
  'consent.allow': 'Autoriser',
  'scope.openid': 'Vous connecter avec votre compte Latchkey',
  'scope.profile': 'Voir votre nom et votre nom d’utilisateur',
  'scope.email': 'Voir votre adresse e-mail et si elle est vérifiée',
  'scope.offline_access': 'Garder l’accès en votre absence (même après votre déconnexion)',
  'scope.other': 'Utiliser l’autorisation «\u00a0{scope}\u00a0»',
  'scope.api.users_read': 'Lire les informations de votre compte Latchkey (et, si vous êtes administrateur, de tous les comptes)',
  'scope.api.users_write': 'Modifier ou supprimer votre compte Latchkey (et, si vous êtes administrateur, d’autres comptes)',
  'scope.api.account': 'Gérer votre mot de passe, la double authentification, les applications connectées et les sessions',
  'scope.api.admin': 'Administrer Latchkey en votre nom (applications, API, journal d’audit), si vous êtes administrateur',
  'claim.preferred_username': 'nom d’utilisateur',
  'claim.name': 'nom complet',
  'claim.given_name': 'prénom',
  'claim.family_name': 'nom de famille',
  'claim.updated_at': 'date de la dernière modification de votre profil',
  'claim.email': 'adresse e-mail',
  'claim.email_verified': 'si votre adresse e-mail est vérifiée',
  'device.title': 'Connecter un appareil',
  'device.input.lead': 'Saisissez le code affiché sur votre appareil.',
  'device.input.placeholder': 'Saisir le code',
  'device.continue': 'Continuer',
  'device.cancel': 'Annuler',
  'device.error.code': 'Ce code n’est pas valide, ou il a expiré ou déjà servi. Vérifiez le code et réessayez.',
  'device.error.aborted': 'La connexion a été annulée.',
  'device.error.other': 'Une erreur s’est produite. Recommencez depuis votre appareil.',
  'device.confirm.heading': 'Connecter {client}\u00a0?',
  'device.confirm.lead': 'Vérifiez que l’appareil affiche ce code\u00a0:',
  'device.confirm.from': 'Demandé depuis {device}',
  'device.success.title': 'Appareil connecté',
  'device.success.lead': 'Vous pouvez revenir à votre appareil et fermer cette fenêtre.',
  'device.success.leadClient': '{client} est maintenant connecté. Vous pouvez revenir à votre appareil et fermer cette fenêtre.',
  'logout.title': 'Se déconnecter',
  'logout.heading': 'Se déconnecter\u00a0?',
  'logout.lead': 'Voulez-vous vous déconnecter de Latchkey\u00a0?',
  'logout.leadClient': 'Voulez-vous vous déconnecter de Latchkey et de {client}\u00a0?',
  'logout.stay': 'Rester connecté',
  'logout.submit': 'Se déconnecter',
  'loggedOut.title': 'Déconnecté',
  'loggedOut.lead': 'Vous êtes déconnecté. Vous pouvez fermer cette fenêtre.',
  'loggedOut.leadClient': 'Vous êtes déconnecté de {client}. Vous pouvez fermer cette fenêtre.',
  'error.title': 'Une erreur s’est produite',
  'error.code': 'Code d’erreur\u00a0:',
  'account.title': 'Votre compte',
  'account.nav.label': 'Compte',
  'account.nav.profile': 'Profil',
  'account.nav.password': 'Mot de passe',
  'account.nav.twoFactor': 'Authentification à deux facteurs',
  'account.nav.applications': 'Applications',
  'account.nav.sessions': 'Sessions',
  'account.nav.delete': 'Supprimer le compte',
  'account.signedInAs': 'Connecté en tant que {username}',
  'account.signOut': 'Se déconnecter',
  'account.signedOut.title': 'Non connecté',
  'account.signedOut.lead': 'Vous n’êtes plus connecté\u00a0: rien n’a été modifié. Connectez-vous et réessayez.',
  'account.signIn': 'Se connecter',
  'account.fields': 'Veuillez corriger les champs signalés ci-dessous.',
  'account.when': '{date} UTC',
  'profile.title': 'Profil',
  'profile.username': 'Nom d’utilisateur',
  'profile.usernameHint': 'Lettres, chiffres et @ . + - _ uniquement.',
  'profile.name': 'Nom complet',
  'profile.firstName': 'Prénom',
  'profile.lastName': 'Nom',
  'profile.email': 'Adresse e-mail',
  'profile.noEmail': 'Aucune adresse e-mail',
  'profile.verified': 'Vérifiée',
  'profile.unverified': 'Non vérifiée',
  'profile.memberSince': 'Membre depuis',
  'profile.lastLogin': 'Dernière connexion',
  'profile.never': 'Jamais',
  'profile.edit': 'Modifier votre profil',
  'profile.emailHint': 'Une nouvelle adresse reçoit un lien pour la vérifier ; d’ici là, la connexion et la réinitialisation du mot de passe utilisent l’adresse actuelle, qui est prévenue du changement.',
  'profile.pendingEmail': 'Nouvelle adresse',
  'profile.pendingHint': 'en attente de vérification',
  'profile.currentPasswordHint': 'Nécessaire uniquement pour changer votre adresse e-mail.',
  'profile.save': 'Enregistrer',
  'profile.resend': 'Renvoyer l’e-mail de vérification',
  'profile.resendThrottled.one': 'Trop de demandes. Réessayez dans {minutes} minute.',
  'profile.resendThrottled.other': 'Trop de demandes. Réessayez dans {minutes} minutes.',
  'profile.nothingToVerify': 'Il n’y a pas d’adresse e-mail non vérifiée à qui envoyer un lien.',
  'password.title': 'Changer le mot de passe',
  'password.lead': 'Vous restez connecté dans ce navigateur\u00a0; toutes les autres sessions et applications sont déconnectées.',
  'password.current': 'Mot de passe actuel',
  'password.new': 'Nouveau mot de passe',
  'password.confirm': 'Nouveau mot de passe, à nouveau',
  'password.hint': 'Au moins 8 caractères. Les longues phrases de passe sont bienvenues\u00a0; les mots de passe très courants sont refusés.',
  'password.submit': 'Changer le mot de passe',
  'password.mismatch': 'Les deux mots de passe ne correspondent pas.',
  'apps.title': 'Applications connectées',
  'apps.lead': 'Les applications que vous avez autorisées à utiliser votre compte. Retirer l’accès déconnecte l’application et invalide ses jetons aussitôt.',
  'apps.none': 'Aucune application n’a accès à votre compte.',
  'apps.allowed': 'Autorisée le {date}',
  'apps.revoke': 'Retirer l’accès',
  'apps.notFound': 'Cette application n’est pas connectée à votre compte.',
  'sessions.title': 'Sessions',
  'sessions.lead': 'Les navigateurs où votre compte est connecté.',
  'sessions.signedIn': 'Connecté le {date}',
  'sessions.expires': 'Prend fin le {date}',
  'sessions.thisDevice': 'Cet appareil',
  'sessions.applications': 'Applications\u00a0: {applications}',
  'sessions.noApplications': 'Aucune application pour l’instant',
  'sessions.signOut': 'Déconnecter',
  'sessions.signOutThis': 'Déconnecter cet appareil',
  'sessions.notFound': 'Cette session a déjà pris fin.',
  'delete.title': 'Supprimer le compte',
  'delete.lead': 'Le compte {username} sera supprimé définitivement et déconnecté de toutes les applications. C’est irréversible.',
  'delete.username': 'Saisissez votre nom d’utilisateur pour confirmer',
  'delete.password': 'Mot de passe',
  'delete.submit': 'Supprimer mon compte',
  'delete.lastSuperuser': 'Vous êtes le dernier superutilisateur\u00a0: nommez-en un autre avant de supprimer votre compte.',
  'deleted.title': 'Compte supprimé',
  'deleted.lead': 'Votre compte a été supprimé, et toutes les sessions et applications ont été déconnectées.',
  'notice.profileSaved': 'Votre profil a été enregistré.',
  'notice.profileSavedVerify': 'Votre profil a été enregistré. Nous avons envoyé un lien à votre nouvelle adresse e-mail pour la vérifier.',
  'notice.verificationSent': 'Nous avons envoyé un nouveau lien de vérification à votre adresse e-mail.',
  'notice.passwordChanged': 'Votre mot de passe a été changé. Toutes les autres sessions et applications ont été déconnectées.',
  'notice.appRevoked': 'L’accès a été retiré\u00a0: l’application ne peut plus utiliser votre compte.',
  'notice.sessionEnded': 'Cette session a été déconnectée.',
  'notice.twoFactorOff': 'La validation en deux étapes est désactivée. La connexion ne demande plus que votre mot de passe.',
  'problem.code': 'Le code n’est pas valide. Saisissez le code actuel de votre application d’authentification.',
  'problem.otpNeeded': 'Ce compte utilise la double authentification : saisissez le code actuel de votre application d’authentification (ou un code de récupération).',
  'tf.lead.off': 'Protégez votre compte par une deuxième étape à la connexion\u00a0: un code donné par une application d’authentification sur votre téléphone.',
  'tf.setup': 'Configurer une application d’authentification',
  'tf.scan': 'Scannez ce code QR avec votre application d’authentification (par exemple Aegis, Google Authenticator ou 1Password).',
  'tf.qrAlt': 'Code QR pour ajouter votre compte à une application d’authentification',
  'tf.key': 'Ou saisissez cette clé dans l’application\u00a0:',
  'tf.code': 'Code de l’application',
  'tf.confirm': 'Activer la validation en deux étapes',
  'tf.restart': 'Recommencer avec une nouvelle clé',
  'tf.on': 'La validation en deux étapes est activée depuis {date}.',
  'tf.remaining': 'Codes de récupération inutilisés\u00a0: {count}.',
  'tf.codesTitle': 'Vos codes de récupération',
  'tf.codesLead': 'Chaque code vous connecte une fois si vous perdez votre téléphone. Conservez-les en lieu sûr dès maintenant\u00a0: ils ne seront plus affichés.',
  'tf.regenerate': 'Créer de nouveaux codes de récupération',
  'tf.regenerateLead': 'Vos anciens codes de récupération cesseront de fonctionner.',
  'tf.codeOrRecovery': 'Code de l’application, ou un code de récupération',
  'tf.disableTitle': 'Désactiver la validation en deux étapes',
  'tf.password': 'Mot de passe actuel',
  'tf.disable': 'Désactiver',
  'problem.required': 'Ce champ est obligatoire.',
  'problem.usernameRequired': 'Le nom d’utilisateur est obligatoire.',
  'problem.usernameLength': 'Le nom d’utilisateur doit faire au plus 150 caractères.',
  'problem.usernameCharacters': 'Le nom d’utilisateur ne peut contenir que des lettres, des chiffres et les caractères @ . + - _.',
  'problem.usernameTaken': 'Ce nom d’utilisateur est déjà pris.',
  'problem.emailLength': 'L’adresse e-mail doit faire au plus 254 caractères.',
  'problem.emailInvalid': 'Saisissez une adresse e-mail valide.',
  'problem.emailTaken': 'Cette adresse e-mail est déjà utilisée par un autre compte.',
  'problem.nameLength': '150 caractères au plus.',
  'problem.passwordShort': 'Le mot de passe doit faire au moins {min} caractères.',
  'problem.passwordLong': 'Le mot de passe doit faire au plus {max} caractères.',
  'problem.passwordCommon': 'Ce mot de passe est trop courant\u00a0; choisissez-en un plus difficile à deviner.',
  'problem.passwordSame': 'Le nouveau mot de passe doit être différent de l’actuel.',
  'problem.currentPassword': 'Le mot de passe actuel est incorrect.',
  'problem.password': 'Le mot de passe est incorrect.',
  'problem.confirmUsername': 'Saisissez votre nom d’utilisateur exactement comme indiqué.',
};

const CATALOGS: Record<Locale, Record<MessageKey, string>> = { en: EN, fr: FR };

/** A language tag's supported locale: "fr-CA" and "FR" are French. */
function supportedLocale(tag: string): Locale | undefined {
  const primary = tag.trim().toLowerCase().split('-')[0];
  return SUPPORTED_LOCALES.find((locale) => locale === primary);
}

// Both inputs come from the request; a few dozen tags are more than any browser sends.
const MAX_TAGS = 32;

/** The first supported tag of a space-separated `ui_locales` value, in the RP's order. */
export function fromUiLocales(uiLocales: unknown): Locale | undefined {
  if (typeof uiLocales !== 'string') return undefined;
  for (const tag of uiLocales.split(' ').filter(Boolean).slice(0, MAX_TAGS)) {
    const locale = supportedLocale(tag);
    if (locale) return locale;
  }
  return undefined;
}

/** The supported language the browser prefers most (RFC 9110 12.5.4: q-values, then order). */
export function fromAcceptLanguage(header: string | undefined): Locale | undefined {
  if (!header) return undefined;
  const ranges = header
    .split(',')
    .slice(0, MAX_TAGS)
    .map((part, order) => {
      const [tag = '', ...params] = part.split(';').map((p) => p.trim());
      const q = params.find((p) => /^q=/i.test(p));
      const quality = q === undefined ? 1 : Number(q.slice(2));
      return { tag, quality: Number.isFinite(quality) ? quality : 0, order };
    })
    .filter((range) => range.tag && range.quality > 0)
    .sort((a, b) => b.quality - a.quality || a.order - b.order);
  for (const range of ranges) {
    const locale = supportedLocale(range.tag);
    if (locale) return locale;
  }
  return undefined;
}

/** `ui_locales` first, then Accept-Language, then English. */
export function chooseLocale({ uiLocales, acceptLanguage }: { uiLocales?: unknown; acceptLanguage?: string | undefined }): Locale {
  return fromUiLocales(uiLocales) ?? fromAcceptLanguage(acceptLanguage) ?? DEFAULT_LOCALE;
}

export type MessageVars = Record<string, string | number>;

/** Messages of one locale, as views and routes use them. */
export interface Translator {
  readonly locale: Locale;
  /** Plain text with the placeholders filled in; escape it where it goes into HTML (`<%= %>`). */
  t(key: MessageKey, vars?: MessageVars): string;
  /** Escaped HTML with each placeholder's value in <strong>, for `<%~ %>`. */
  strong(key: MessageKey, vars: MessageVars): string;
}

const HTML_ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const escapeHtml = (text: string): string => text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c] ?? c);

function fill(message: string, vars: MessageVars, wrap: (value: string) => string): string {
  return message.replace(/\{(\w+)\}/g, (placeholder, name: string) => (name in vars ? wrap(String(vars[name])) : placeholder));
}

export function translator(locale: Locale): Translator {
  const catalog = CATALOGS[locale];
  return {
    locale,
    t: (key, vars = {}) => fill(catalog[key], vars, (value) => value),
    // The message is escaped before the values go in, and each value is escaped on its own.
    strong: (key, vars) => fill(escapeHtml(catalog[key]), vars, (value) => `<strong>${escapeHtml(value)}</strong>`),
  };
}
